#!/usr/bin/env bash
# Container logs benchmark (issue 12): lines per second the worker ships to CloudWatch Logs from one
# container printing as fast as it can, next to `docker logs -f` of the same container to /dev/null;
# storage transactions per 1,000 lines of 100 bytes; line printed -> visible in GetLogEvents (p50, p95).
#
#   bash bench/logs.sh [--no-build] [--quick] [--keep-logs]
#
# Builds the control plane and the worker (Release), starts a fresh in-memory Azurite with --debug
# (its log is where storage transactions are counted), the control plane standalone and one worker
# on the local Docker engine, then (bench/lib/logsbench.py):
#   1. throughput, 3 rounds: 100,000 numbered lines of 100 bytes from `seq | awk`, once as a raw
#      container read by `docker logs -f`, once as our task with the awslogs driver (until stored);
#      every line read back through GetLogEvents (all, in order, once);
#   2. cost: a task printing 1,000 lines of 100 bytes, each round: the worker's storage transactions;
#   3. latency: a line every 200 ms for 60 s, GetLogEvents polled every 100 ms.
# Prints a Markdown report and writes bench/results/logs.md (raw numbers: logs.json).
#
#   --no-build    use the existing Release builds (src/Functions, src/Worker bin/Release/net10.0)
#   --quick       1 round of 30,000 lines, 15 s of latency: checks the script in about a minute
#   --keep-logs   keep the work directory (Azurite's debug log, both processes' logs)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1 KEEP_LOGS=0
RUN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) RUN_ARGS+=(--rounds 1 --lines 30000 --latency-seconds 15) ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

bench_require python3 azurite dotnet docker
bench_require_docker

bench_workdir ecs-logs-bench
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-logs-$RUN_ID"
INSTANCE_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
# Containers of this run only (the worker's and the raw ones).
BENCH_CONTAINER_FILTERS=("label=com.amazonaws.ecs.cluster=$CLUSTER" "label=bench-logs=$RUN_ID")
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

# The worker with its defaults. AZURE_TELEMETRY_DISABLED drops the Azure SDK's User-Agent header
# from its storage requests: that is how Azurite's log tells them from the control plane's.
# Single-line timestamped logs (like the control plane's) and heartbeat lines (Debug) let the
# driver follow it without calling the API.
bench_start_worker "$CLUSTER" "$INSTANCE_ID" AZURE_TELEMETRY_DISABLED=true "${BENCH_SINGLE_LINE_LOGS[@]}" \
  "Logging__LogLevel__Serverless.Worker.Registration.Heartbeat=Debug"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine and the driver share these cores"
python3 logsbench.py run --url "$OURS_URL" --cluster "$CLUSTER" --run-id "$RUN_ID" \
  --azurite-log "$WORK/azurite-debug.log" --worker-log "$WORK/worker.log" \
  --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" --cp-pid "$CP_PID" \
  --out "$BENCH/results/logs.md" --json "$BENCH/results/logs.json" "${RUN_ARGS[@]}"
echo "written: bench/results/logs.md (raw numbers: logs.json)"
