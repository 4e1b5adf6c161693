#!/usr/bin/env bash
# Idle cost benchmark: the storage transactions an idle cluster costs per hour, by process and by
# table/queue, against the bar of issue 17 (at most 2,000 per hour in total).
#
#   bash bench/idle-cost.sh [--no-build] [--window SECONDS] [--settle SECONDS] [--services N] [--keep-logs]
#
# Builds the control plane and the worker (Release), starts a fresh in-memory Azurite with --debug
# (one log record per storage request), the control plane standalone and one worker, creates N
# services (10) of one small busybox task each, waits until every one is steady, lets the pollers
# settle (--settle, 120 s), then counts every storage request for --window seconds (600) with no
# API call, and extrapolates to an hour. Prints Markdown tables and writes them to
# bench/results/idle-cost.md (raw numbers: idle-cost.json). Everything it started, containers
# included, is stopped on exit.
#
#   --no-build    use the existing Release build (src/{Functions,Worker}/bin/Release/net10.0)
#   --no-wait     measure at once, even while a test run or another benchmark is running
#   --keep-logs   keep the work directory (Azurite debug log, process logs) after the run
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1 QUICK=0 WAIT=1 KEEP_LOGS=0 WINDOW=600 SETTLE=120 SERVICES=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --window) WINDOW="$2"; shift ;;
    --settle) SETTLE="$2"; shift ;;
    --services) SERVICES="$2"; shift ;;
    --no-wait) WAIT=0 ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

bench_require python3 azurite dotnet docker xargs pgrep
bench_require_docker
bench_wait_quiet 'read-throughput.sh|run-task.sh|service-scale.sh'

bench_workdir ecs-idle-cost
CLUSTER="idle-$(date +%H%M%S)-$$"
INSTANCE_ID="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
# Containers of this run only (by cluster label and instance id).
BENCH_CONTAINER_FILTERS=("label=com.amazonaws.ecs.cluster=$CLUSTER" "label=ecs-worker.instance-id=$INSTANCE_ID")
read -r AZ_QUEUE_PORT AZ_TABLE_PORT CP_PORT < <(bench_free_ports 3)

echo "== setup (work directory $WORK)"
if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj
fi
bench_require_files "$CP_DLL" "$WORKER_DLL"

bench_start_azurite --debug "$WORK/azurite-debug.log"
bench_storage_env
CP_URL="http://127.0.0.1:$CP_PORT"
bench_start_control_plane "$CP_URL" "${BENCH_CP_COUNTING_ENV[@]}"

WORKER_MEMORY=2048
# The task metadata endpoint costs no storage; off, so a Docker bridge without a gateway cannot stop the run.
bench_start_worker "$CLUSTER" "$INSTANCE_ID" "${BENCH_WORKER_COUNTING_ENV[@]}" \
  Worker__MemoryMiB=$WORKER_MEMORY Worker__Cpu=4096 Worker__MetadataPort=-1

cd "$BENCH/lib"
bench_wait_ready "$CP_URL"

mkdir -p "$BENCH/results"
OUT="$BENCH/results/idle-cost.md" JSON="$BENCH/results/idle-cost.json"
python3 idlecost.py run --url "$CP_URL" --cluster "$CLUSTER" --azurite-log "$WORK/azurite-debug.log" \
  --services "$SERVICES" --settle "$SETTLE" --window "$WINDOW" --out "$OUT" --json "$JSON"
[[ -n "$BUSY_NOTE" ]] && echo "note: $BUSY_NOTE" | tee -a "$OUT"
echo "written: bench/results/idle-cost.md (raw numbers: idle-cost.json)"
