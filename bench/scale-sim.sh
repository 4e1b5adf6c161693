#!/usr/bin/env bash
# Scale simulation: a cluster of simulated workers (Worker__Engine=simulated, in one process) and
# the control plane standalone, each behind a counting storage proxy in front of a fresh in-memory
# Azurite; fills the cluster with tasks (half standalone, half in services of 50), then measures the
# storage transactions per operation of each hot path (RunTask, a task report, DescribeTasks,
# ListTasks, a service scale-up, the resync timer and its no-op reconciles, the health sweep) and
# the busiest table partition and queue. Not part of .ci/run.
#
#   bash bench/scale-sim.sh [--no-build] [--sizes "10x100 100x1000 1000x10000"] [--operations 50] [--idle 60]
#
# One run per size ("<instances>x<tasks>"), each on its own fresh Azurite. Results (one JSON per
# size, and a Markdown table of all) go to bench/results/scale-sim*.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 SIZES="10x100 100x1000" OPERATIONS=50 IDLE=60
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --sizes) SIZES="$2"; shift ;;
    --operations) OPERATIONS="$2"; shift ;;
    --idle) IDLE="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for tool in python3 azurite-table azurite-queue dotnet; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (bash scripts/install-deps.sh)" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-scale-sim.XXXXXX")"
PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  # Whatever has not ended 10 s after TERM is killed (an aborted simulation once outlived its TERM).
  for _ in $(seq 20); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.5
  done
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if [[ $rc -ne 0 ]]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

if [[ $BUILD -eq 1 ]]; then
  for project in src/Functions/Serverless.Functions.csproj bench/ScaleSim/ScaleSim.csproj; do
    echo "  dotnet build -c Release $project"
    dotnet build -c Release "$REPO/$project" -nologo -v quiet >>"$WORK/build.log" 2>&1 \
      || { tail -40 "$WORK/build.log" >&2; echo "build failed (log: $WORK/build.log)" >&2; exit 1; }
  done
fi
FUNCTIONS="$REPO/src/Functions/bin/Release/net10.0/Serverless.Functions.dll"
SIM="$REPO/bench/ScaleSim/bin/Release/net10.0/ScaleSim.dll"
for dll in "$FUNCTIONS" "$SIM"; do [[ -f "$dll" ]] || { echo "missing $dll (run without --no-build)" >&2; exit 1; }; done

free_ports() { python3 -c 'import socket
s=[socket.socket() for _ in range('"$1"')]
[x.bind(("127.0.0.1",0)) for x in s]
print(*(x.getsockname()[1] for x in s))'; }

OUT="$REPO/bench/results"
mkdir -p "$OUT"
for size in $SIZES; do
  instances="${size%x*}" tasks="${size#*x}"
  read -r QPORT TPORT APIPORT < <(free_ports 3)
  echo "== $instances instances, $tasks tasks"
  mkdir -p "$WORK/$size" && cd "$WORK/$size"
  # The table and the queue service in two processes: each is one Node.js event loop, and one
  # Azurite for both was the run's bottleneck at 1,000 instances (see the README).
  setsid azurite-table --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
    --tablePort "$TPORT" >"$WORK/$size/azurite-table.log" 2>&1 &
  AZT=$!; PIDS+=("$AZT")
  setsid azurite-queue --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
    --queuePort "$QPORT" >"$WORK/$size/azurite-queue.log" 2>&1 &
  AZQ=$!; PIDS+=("$AZQ")
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$QPORT") 2>/dev/null && break; sleep 0.2; done
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$TPORT") 2>/dev/null && break; sleep 0.2; done
  # In a session of its own, so that whatever way this script ends, the cleanup above ends the
  # simulation and its child control plane together (kill of the process group).
  DOTNET_gcServer=0 setsid dotnet "$SIM" --instances "$instances" --tasks "$tasks" --operations "$OPERATIONS" --idle "$IDLE" \
    --azurite-tables "http://127.0.0.1:$TPORT" --azurite-queues "http://127.0.0.1:$QPORT" --azurite-pid "$AZT,$AZQ" \
    --functions "$FUNCTIONS" --out "$OUT" --port "$APIPORT" --log-dir "$WORK/$size" > >(tee "$WORK/$size/sim.log") 2>&1 &
  SIMPID=$!; PIDS+=("$SIMPID")
  wait "$SIMPID"
  # The run's progress and diagnostics (not the workers' warnings) stay with the results.
  grep -vE '^(warn|fail|info): |^ *(at |---|--->)' "$WORK/$size/sim.log" >"$OUT/scale-sim-$size.log" || true
  kill -TERM -- "-$AZT" "-$AZQ" 2>/dev/null || true
done
python3 "$REPO/bench/lib/scalesim_report.py" "$OUT" | tee "$OUT/scale-sim.md"
