#!/usr/bin/env bash
# RunTask benchmark: time from RunTask to RUNNING next to a raw `docker run -d` on the same engine,
# storage transactions and function executions per task launched, and the idle cost.
#
#   bash bench/run-task.sh [--no-build] [--quick] [--keep-logs]
#
# Builds the control plane and the worker (Release), starts a fresh in-memory Azurite with
# --debug (its log is where storage transactions are counted), the control plane standalone and
# one worker on the local Docker engine, then:
#   1. latency: 50 of our tasks (local/busybox:latest, sleep 300, 32 MiB) launched one after
#      another, each paired with a raw `docker run -d` of the same image and options (which goes
#      first alternates); p50/p95 and ratios;
#   2. cost: windows of 50 launches (50 x RunTask count=1, 5 x count=10) and 50 stops, counting
#      every storage request both processes make and every function execution;
#   3. idle: 60 s with nothing to do: storage requests per minute and CPU of each process.
# Prints a Markdown table and writes it to bench/results/run-task.md (raw numbers: run-task.json).
#
#   --no-build    use the existing Release builds (src/Functions, src/Worker bin/Release/net10.0)
#   --quick       5 samples, 10-task windows, 10 s idle: checks the script in ~1.5 minutes
#   --keep-logs   keep the work directory (Azurite's debug log, both processes' logs)
#   --poll-interval S   seconds between the client's DescribeTasks polls (default 0.02); each poll
#                 costs the client, the control plane and Azurite CPU while the engine starts ours
#   --order O     alternate (default): which side of a pair goes first alternates; ours-first: ours
#                 then raw in every pair (the order before 2026-12-03 afternoon)
#   --raw-observer on|off   on (default): the raw `docker run -d` runs while the client polls
#                 DescribeTasks as it does during ours (the polling's CPU, which on this machine
#                 shares the engine's cores, then weighs on both); off: raw runs alone (as before)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1 KEEP_LOGS=0
RUN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) RUN_ARGS+=(--samples 5 --warmup 1 --cost-tasks 10 --idle 10) ;;
    --keep-logs) KEEP_LOGS=1 ;;
    --poll-interval) RUN_ARGS+=(--poll-interval "${2:?--poll-interval needs seconds}"); shift ;;
    --order) RUN_ARGS+=(--order "${2:?--order needs alternate or ours-first}"); shift ;;
    --raw-observer) RUN_ARGS+=(--raw-observer "${2:?--raw-observer needs on or off}"); shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

bench_require python3 azurite dotnet docker
bench_require_docker

bench_workdir ecs-runtask-bench
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-runtask-$RUN_ID"
INSTANCE_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
# Containers of this run only (the worker's and the raw ones).
BENCH_CONTAINER_FILTERS=("label=com.amazonaws.ecs.cluster=$CLUSTER" "label=bench-run-task=$RUN_ID")
read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT < <(bench_free_ports 3)

echo "== setup (work directory $WORK, cluster $CLUSTER)"
if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj
fi
bench_require_files "$CP_DLL" "$WORKER_DLL"

bench_start_azurite --debug "$WORK/azurite-debug.log"
bench_storage_env
OURS_URL="http://127.0.0.1:$OURS_PORT"

# The control plane at its default log level (host.json: Information: one line per API call and
# per applied task report), plus the standalone host's per-invocation lines of its queue and timer
# functions (category Function.<name>, Debug), which count function executions.
bench_start_control_plane "$OURS_URL" Logging__LogLevel__Function=Debug
cd "$BENCH/lib"
bench_wait_ready "$OURS_URL"
python3 runtask.py setup "$OURS_URL" --cluster "$CLUSTER"

# The worker with its defaults. AZURE_TELEMETRY_DISABLED drops the Azure SDK's User-Agent header
# from its storage requests: that is how Azurite's log tells them from the control plane's.
# Single-line timestamped logs (like the control plane's) and heartbeat lines (Debug) let the
# driver follow it without calling the API.
bench_start_worker "$CLUSTER" "$INSTANCE_ID" AZURE_TELEMETRY_DISABLED=true "${BENCH_SINGLE_LINE_LOGS[@]}" \
  "Logging__LogLevel__Serverless.Worker.Registration.Heartbeat=Debug"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine and the driver share these cores"
python3 runtask.py run --url "$OURS_URL" --cluster "$CLUSTER" --run-id "$RUN_ID" \
  --azurite-log "$WORK/azurite-debug.log" --cp-log "$WORK/control-plane.log" \
  --worker-log "$WORK/worker.log" \
  --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
  --out "$BENCH/results/run-task.md" --json "$BENCH/results/run-task.json" "${RUN_ARGS[@]}"
echo "written: bench/results/run-task.md (raw numbers: run-task.json)"
