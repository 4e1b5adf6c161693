#!/usr/bin/env bash
# Service scale benchmark: a REPLICA service scaled 0 -> 50 -> 0 through the ECS API against raw
# docker on the same engine, the storage requests and function executions that costs per task,
# and the storage cost of one reconcile with and without 2,000 other tasks in the cluster.
#
#   bash bench/service-scale.sh [--no-build] [--quick] [--no-wait] [--keep-logs] [--repeats N]
#
# Builds the control plane and the worker (Release), then twice starts a fresh in-memory Azurite,
# the control plane standalone and one worker on free ports and runs bench/lib/servicescale.py:
# first the timed cycles, ours and raw, against a silent Azurite (as scripts/run.sh runs it); then,
# with Azurite's --debug log (one record per storage request), the counted cycles and the one
# reconcile. Prints Markdown tables and writes them to bench/results/service-scale.md (raw numbers:
# service-scale.json). Everything it started, containers included, is stopped on exit.
#
#   --no-build    use the existing Release build (src/{Functions,Worker}/bin/Release/net10.0)
#   --quick       10 tasks, one run, 200 other task rows: checks the script in about a minute
#   --no-wait     measure at once, even while a test run or another benchmark is running
#   --keep-logs   keep the work directory (timing/: the first phase's logs; Azurite's debug log) after the run
#   --repeats N   N timed cycles of 0 -> 50 -> 0 each side, and N counted, instead of 3 (about a minute per N)
#
# Before the measured cycles, one unmeasured cycle of the same size each side: the first 0 -> 50
# after start-up is the processes' JIT warm-up as much as orchestration (a 10-task warm-up left most
# of it to the first measured cycle); its time is reported on its own, not in the medians.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1 QUICK=0 WAIT=1 KEEP_LOGS=0 REPEATS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) QUICK=1 ;;
    --no-wait) WAIT=0 ;;
    --keep-logs) KEEP_LOGS=1 ;;
    --repeats) REPEATS="${2:?--repeats needs a number}"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

bench_require python3 azurite dotnet docker xargs pgrep
bench_require_docker
bench_wait_quiet 'dotnet test|vstest|testhost|read-throughput.sh|run-task.sh'

bench_workdir ecs-service-scale
CLUSTER="svcscale-$(date +%H%M%S)-$$"
INSTANCE_ID="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
# Containers of this run only: the worker's (by cluster label) and the raw baseline's.
BENCH_CONTAINER_FILTERS=("label=com.amazonaws.ecs.cluster=$CLUSTER" "label=ecs-worker.instance-id=$INSTANCE_ID"
  "label=bench-service-scale=$CLUSTER")
echo "== setup (work directory $WORK)"
if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj
fi
bench_require_files "$CP_DLL" "$WORKER_DLL"

WORKER_MEMORY=4096     # 50 tasks x 16 MiB = 800 MiB, with room to spare
# Azurite, the control plane and one worker, fresh, on free ports. Extra arguments go to Azurite.
start_stack() {
  read -r AZ_QUEUE_PORT AZ_TABLE_PORT CP_PORT < <(bench_free_ports 3)
  bench_start_azurite "$@"
  bench_storage_env
  # A known wake port: the one-reconcile phase puts its message on the queue itself and wakes the
  # control plane as any sender does (an unannounced message waits for the 120 s safety-net poll).
  CP_WAKE_PORT="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  export Ecs__WakePort="$CP_WAKE_PORT"
  CP_URL="http://127.0.0.1:$CP_PORT"
  bench_start_control_plane "$CP_URL" "${BENCH_CP_COUNTING_ENV[@]}"
  bench_start_worker "$CLUSTER" "$INSTANCE_ID" "${BENCH_WORKER_COUNTING_ENV[@]}" \
    Worker__MemoryMiB=$WORKER_MEMORY Worker__Cpu=4096
  bench_wait_ready "$CP_URL"
}

# Stops what start_stack started (a cycle leaves no container behind) and keeps its logs in $WORK/$1.
stop_stack() {
  bench_stop_all
  mkdir -p "$WORK/$1"
  mv "$WORK"/*.log "$WORK/worker-state" "$WORK/$1/"
}

ARGS=(--count 50 --repeats "$REPEATS" --warmup 50 --idle-seconds 15 --other-tasks 2000 --reconcile-samples 3)
[[ $QUICK -eq 1 ]] && ARGS=(--count 10 --repeats 1 --warmup 3 --idle-seconds 4 --other-tasks 200 --reconcile-samples 1 --quick)
mkdir -p "$BENCH/results"
OUT="$BENCH/results/service-scale.md" JSON="$BENCH/results/service-scale.json"
if [[ $QUICK -eq 1 ]]; then OUT="$WORK/service-scale.md" JSON="$WORK/service-scale.json"; fi
run_phase() {  # PHASE [ARG...]
  (cd "$BENCH/lib" && SERVICESCALE_BUSY_PATTERN="$BUSY_PATTERN" SERVICESCALE_BUSY_NOTE="$BUSY_NOTE" \
    python3 servicescale.py run --phase "$1" --url "$CP_URL" --cluster "$CLUSTER" \
      --cp-log "$WORK/control-plane.log" --worker-log "$WORK/worker.log" \
      --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
      --table-port "$AZ_TABLE_PORT" --queue-port "$AZ_QUEUE_PORT" --worker-memory "$WORKER_MEMORY" --wake-port "$CP_WAKE_PORT" \
      "${ARGS[@]}" "${@:2}")
}

# Timed against a silent Azurite, as scripts/run.sh runs it; counted against one with --debug (one
# log record of about 4 KB per storage request), whose cost would otherwise be timed as ours.
echo "== phase 1 of 2: timing (Azurite silent)"
start_stack
run_phase timing --json "$WORK/timing.json"
stop_stack timing
echo "== phase 2 of 2: counting (Azurite with --debug)"
start_stack --debug "$WORK/azurite-debug.log"
run_phase counting --azurite-log "$WORK/azurite-debug.log" --timing-json "$WORK/timing.json" --out "$OUT" --json "$JSON"
if [[ $QUICK -eq 1 ]]; then
  echo "(--quick: bench/results untouched)"
else
  echo "written: bench/results/service-scale.md (raw numbers: service-scale.json)"
fi
