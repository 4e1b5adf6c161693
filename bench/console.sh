#!/usr/bin/env bash
# Web console benchmark: time to first render of the service view (and of its cluster's view) and the
# API calls one refresh sends, for a cluster of 10 services with 10 tasks each (100 tasks, real busybox
# containers on Docker), in Debian's headless Chromium; baseline in the same run: the same reads of the
# service view made by boto3 from one Python process.
#
#   bash bench/console.sh [--no-build] [--runs N] [--keep-logs]
#
# Starts a fresh in-memory Azurite, the control plane standalone and one worker on free ports, creates
# the services with boto3 (bench/lib/consolebench.py), waits for 100 RUNNING tasks, runs
# src/Console/test/bench.mjs, prints the
# figures and writes them to bench/results/console.json. Everything it started, containers included,
# is stopped on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1 RUNS=5 KEEP_LOGS=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --runs) RUNS="$2"; shift ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
bench_require python3 azurite dotnet docker node
[[ -x /usr/bin/chromium ]] || { echo "missing /usr/bin/chromium (bash scripts/install-deps.sh)" >&2; exit 1; }

bench_workdir ecs-console-bench
CLUSTER="consolebench-$$"
INSTANCE_ID="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
BENCH_CONTAINER_FILTERS=("label=ecs-worker.instance-id=$INSTANCE_ID")
read -r AZ_QUEUE_PORT AZ_TABLE_PORT CP_PORT < <(bench_free_ports 3)

if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj
fi
bench_require_files "$CP_DLL" "$WORKER_DLL"

bench_start_azurite
bench_storage_env
export AWS_ACCESS_KEY_ID=AKIALOCALDEVELOPMENT AWS_SECRET_ACCESS_KEY=local-development-secret-key-not-for-production AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE
export Logging__LogLevel__Default=Warning
CP_URL="http://127.0.0.1:$CP_PORT"
bench_start_control_plane "$CP_URL"
for _ in $(seq 120); do
  code="$(curl -s -o /dev/null -w '%{http_code}' "$CP_URL/console/" || true)"
  [[ "$code" == 200 ]] && break
  sleep 0.5
done
[[ "$code" == 200 ]] || { tail -30 "$WORK/control-plane.log" >&2; echo "the control plane did not serve /console" >&2; exit 1; }

LIB="$REPO/bench/lib/consolebench.py"
python3 -c 'import boto3, sys; boto3.client("ecs", endpoint_url=sys.argv[1]).create_cluster(clusterName=sys.argv[2])' "$CP_URL" "$CLUSTER"
# The bench tasks need no task metadata endpoint.
bench_start_worker "$CLUSTER" "$INSTANCE_ID" \
  Worker__MemoryMiB=8192 Worker__Cpu=8192 Worker__HeartbeatSeconds=5 Worker__ContainerStopTimeoutSeconds=1 Worker__MetadataPort=-1

echo "== 10 services x 10 tasks (local/busybox:latest, sleep) in $CLUSTER"
python3 "$LIB" setup "$CP_URL" "$CLUSTER"

echo "== baseline: the service view's eight reads with boto3 from one process (median of $RUNS)"
BASELINE="$(python3 "$LIB" baseline "$CP_URL" "$CLUSTER" "$RUNS")"
echo "   $BASELINE"

echo "== the console in headless Chromium (median of $RUNS page loads per view)"
CONSOLE="$(cd "$REPO/src/Console" && CONSOLE_ENDPOINT="$CP_URL" CONSOLE_CLUSTER="$CLUSTER" CONSOLE_SERVICE=svc-0 CONSOLE_RUNS="$RUNS" node test/bench.mjs)"
echo "$CONSOLE"
mkdir -p "$REPO/bench/results"
python3 "$LIB" report "$BASELINE" "$CONSOLE" >"$REPO/bench/results/console.json"
echo "== written to bench/results/console.json"
