#!/usr/bin/env bash
# Scale simulation: a cluster of simulated workers (Worker__Engine=simulated, in one process) and
# the control plane standalone, each behind a counting storage proxy in front of a fresh in-memory
# Azurite; fills the cluster with tasks (half standalone, half in services of 50), then measures the
# storage transactions per operation of each hot path (RunTask, a task report, DescribeTasks,
# ListTasks, a service scale-up, the resync timer and its no-op reconciles, the health sweep) and
# the busiest table partition and queue. Not part of .ci/run.
#
#   bash bench/scale-sim.sh [--no-build] [--sizes "10x100 100x1000 1000x10000"] [--operations 50] [--idle 60] [--seed]
#
# One run per size ("<instances>x<tasks>"), each on its own fresh Azurite. Results (one JSON per
# size, and a Markdown table of all) go to bench/results/scale-sim*.
#
# --seed: fill without launching every task through the API (which costs ~22 storage transactions
# a task). The services are created through the API (desired 0), the workers stop, the tasks' rows
# (RUNNING), the instances' reservations and each host's running containers (named and labelled as
# the worker makes them) are written directly, UpdateService sets the desired counts, and the
# workers start again and adopt their containers as after a restart. The run checks through the API
# that the cluster is steady (every instance running its tasks with matching remaining resources,
# every service at its desired count, a sample of tasks RUNNING) and fails if it is not; then the
# same phases are measured. Default: every task launched through the API.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1 SIZES="10x100 100x1000" OPERATIONS=50 IDLE=60 SEED=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --sizes) SIZES="$2"; shift ;;
    --operations) OPERATIONS="$2"; shift ;;
    --idle) IDLE="$2"; shift ;;
    --seed) SEED=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
bench_require python3 azurite-table azurite-queue dotnet

bench_workdir ecs-scale-sim
# Whatever has not ended 10 s after TERM is killed (an aborted simulation once outlived its TERM).
BENCH_STOP_SECONDS=10

if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj bench/ScaleSim/ScaleSim.csproj
fi
FUNCTIONS="$CP_DLL"
SIM="$REPO/bench/ScaleSim/bin/Release/net10.0/ScaleSim.dll"
bench_require_files "$FUNCTIONS" "$SIM"

OUT="$REPO/bench/results"
mkdir -p "$OUT"
for size in $SIZES; do
  instances="${size%x*}" tasks="${size#*x}"
  read -r QPORT TPORT APIPORT < <(bench_free_ports 3)
  echo "== $instances instances, $tasks tasks"
  mkdir -p "$WORK/$size" && cd "$WORK/$size"
  # The table and the queue service in two processes: each is one Node.js event loop, and one
  # Azurite for both was the run's bottleneck at 1,000 instances (see the README).
  bench_start "$size/azurite-table" "$WORK/$size" -- azurite-table --inMemoryPersistence --silent --skipApiVersionCheck \
    --loose --disableTelemetry --tablePort "$TPORT"
  AZT="${PIDS[-1]}"
  bench_start "$size/azurite-queue" "$WORK/$size" -- azurite-queue --inMemoryPersistence --silent --skipApiVersionCheck \
    --loose --disableTelemetry --queuePort "$QPORT"
  AZQ="${PIDS[-1]}"
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$QPORT") 2>/dev/null && break; sleep 0.2; done
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$TPORT") 2>/dev/null && break; sleep 0.2; done
  # In a session of its own, so that whatever way this script ends, the cleanup above ends the
  # simulation and its child control plane together (kill of the process group).
  DOTNET_gcServer=0 setsid dotnet "$SIM" --instances "$instances" --tasks "$tasks" --operations "$OPERATIONS" --idle "$IDLE" --seed "$SEED" \
    --azurite-tables "http://127.0.0.1:$TPORT" --azurite-queues "http://127.0.0.1:$QPORT" --azurite-pid "$AZT,$AZQ" \
    --functions "$FUNCTIONS" --out "$OUT" --port "$APIPORT" --log-dir "$WORK/$size" > >(tee "$WORK/$size/sim.log") 2>&1 &
  SIMPID=$!; PIDS+=("$SIMPID")
  wait "$SIMPID"
  # The run's progress and diagnostics (not the workers' warnings) stay with the results.
  grep -vE '^(warn|fail|info): |^ *(at |---|--->)' "$WORK/$size/sim.log" >"$OUT/scale-sim-$size.log" || true
  kill -TERM -- "-$AZT" "-$AZQ" 2>/dev/null || true
done
python3 "$REPO/bench/lib/scalesim_report.py" "$OUT" | tee "$OUT/scale-sim.md"
