#!/usr/bin/env bash
# Auto scaling benchmark (issue 13): (a) from a service's load crossing its target to its first new
# task RUNNING, at the default 60 s metric period, split into segments (datapoints, evaluation,
# scaling activity, launch); (b) the storage transactions of metrics and evaluation per service per
# hour, 10 services of 3 tasks on one worker each with a target tracking policy, against the idle
# cluster's own cost measured first in the same run (the bar: <= 200 per service per hour).
#
#   bash bench/autoscaling.sh [--no-build] [--quick | --latency-only] [--no-wait] [--keep-logs]
#
# Builds the control plane and the worker (Release), starts a fresh in-memory Azurite with --debug
# (one log record per storage request), the control plane standalone and one worker on free ports,
# runs bench/lib/autoscaling.py, prints Markdown tables and writes them to
# bench/results/autoscaling.md (raw numbers: autoscaling.json). Everything it started, containers
# included, is stopped on exit. About 35 minutes.
#
#   --no-build    use the existing Release build (src/{Functions,Worker}/bin/Release/net10.0)
#   --quick       30 s periods instead of 60 s and 2-minute windows: checks the script in ~12 minutes;
#                 its figures are not the benchmark's, and bench/results is left untouched
#   --latency-only  (a) alone (policies put, 240 s for their alarms to settle, then the load): ~10 minutes;
#                 report in bench/results/autoscaling-latency.md (.json)
#   --no-wait     measure at once, even while a test run or another benchmark is running
#   --keep-logs   keep the work directory (Azurite debug log, process logs) after the run
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1 QUICK=0 WAIT=1 KEEP_LOGS=0 LATENCY_ONLY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) QUICK=1 ;;
    --latency-only) LATENCY_ONLY=1 ;;
    --no-wait) WAIT=0 ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

bench_require python3 azurite dotnet docker xargs pgrep
bench_require_docker
bench_wait_quiet 'read-throughput.sh|run-task.sh|service-scale.sh|idle-cost.sh'

bench_workdir ecs-autoscaling
CLUSTER="as-$(date +%H%M%S)-$$"
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
CP_ENV=("${BENCH_CP_COUNTING_ENV[@]}")
if [[ $QUICK -eq 1 ]]; then
  CP_ENV+=(AutoScaling__MetricPeriodSeconds=30 AutoScaling__EvaluationSeconds=30)
fi
bench_start_control_plane "$CP_URL" "${CP_ENV[@]}"

WORKER_MEMORY=4096
# The task metadata endpoint costs no storage; off, so a Docker bridge without a gateway cannot stop the run.
WORKER_ENV=("${BENCH_WORKER_COUNTING_ENV[@]}" Worker__MemoryMiB=$WORKER_MEMORY Worker__Cpu=8192 Worker__MetadataPort=-1)
if [[ $QUICK -eq 1 ]]; then
  WORKER_ENV+=(Worker__MetricsSampleSeconds=10 Worker__MetricsPeriodSeconds=30)
fi
bench_start_worker "$CLUSTER" "$INSTANCE_ID" "${WORKER_ENV[@]}"

cd "$BENCH/lib"
bench_wait_ready "$CP_URL"

mkdir -p "$BENCH/results"
OUT="$BENCH/results/autoscaling.md" JSON="$BENCH/results/autoscaling.json"
ARGS=(--period 60 --baseline-settle 60 --baseline-window 300 --settle 240 --window 600)
if [[ $LATENCY_ONLY -eq 1 ]]; then
  OUT="$BENCH/results/autoscaling-latency.md" JSON="$BENCH/results/autoscaling-latency.json"
  ARGS=(--period 60 --settle 240 --latency-only)
fi
if [[ $QUICK -eq 1 ]]; then
  OUT="$WORK/autoscaling.md" JSON="$WORK/autoscaling.json"
  ARGS=(--period 30 --baseline-settle 20 --baseline-window 120 --settle 120 --window 120 --quick)
fi
AUTOSCALING_BUSY_NOTE="$BUSY_NOTE" \
python3 autoscaling.py run --url "$CP_URL" --cluster "$CLUSTER" --azurite-log "$WORK/azurite-debug.log" \
  --out "$OUT" --json "$JSON" "${ARGS[@]}"
if [[ $QUICK -eq 1 ]]; then
  echo "(--quick: bench/results untouched; report in $OUT)"
  cp "$OUT" "${TMPDIR:-/tmp}/autoscaling-quick.md"
  echo "(copied to ${TMPDIR:-/tmp}/autoscaling-quick.md)"
else
  echo "written: ${OUT#"$REPO/"} (raw numbers: ${JSON#"$REPO/"})"
fi
