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

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
for tool in python3 azurite dotnet docker node; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x /usr/bin/chromium ]] || { echo "missing /usr/bin/chromium (bash scripts/install-deps.sh)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-console-bench.XXXXXX")"
PIDS=()
CLUSTER="consolebench-$$"
INSTANCE_ID="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  local ids
  ids="$(docker ps -aq --filter "label=ecs-worker.instance-id=$INSTANCE_ID" | sort -u | grep . || true)"
  [[ -n "$ids" ]] && echo "$ids" | xargs -r docker rm -f >/dev/null 2>&1 || true
  if [[ $rc -ne 0 || $KEEP_LOGS -eq 1 ]]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

read -r AZ_QUEUE_PORT AZ_TABLE_PORT CP_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
start() { local name="$1"; shift; setsid "$@" >"$WORK/$name.log" 2>&1 & PIDS+=("$!"); }

if [[ $BUILD -eq 1 ]]; then
  for project in Functions/Serverless.Functions.csproj Worker/Serverless.Worker.csproj; do
    echo "== dotnet build -c Release src/$project"
    dotnet build -c Release "$REPO/src/$project" -nologo -v quiet >>"$WORK/build.log" 2>&1 \
      || { tail -40 "$WORK/build.log" >&2; exit 1; }
  done
fi
CP_DLL="$REPO/src/Functions/bin/Release/net10.0/Serverless.Functions.dll"
WORKER_DLL="$REPO/src/Worker/bin/Release/net10.0/Serverless.Worker.dll"

(cd "$WORK" && start azurite azurite --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
  --blobPort 0 --queuePort "$AZ_QUEUE_PORT" --tablePort "$AZ_TABLE_PORT"; echo "${PIDS[-1]}" >"$WORK/azurite.pid")
PIDS+=("$(cat "$WORK/azurite.pid")")
KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$KEY;QueueEndpoint=http://127.0.0.1:$AZ_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://127.0.0.1:$AZ_TABLE_PORT/devstoreaccount1;"
export Ecs__AccessKeys="AKIALOCALDEVELOPMENT:local-development-secret-key-not-for-production" Ecs__Region=us-east-1 Ecs__AccountId=000000000000
export AWS_ACCESS_KEY_ID=AKIALOCALDEVELOPMENT AWS_SECRET_ACCESS_KEY=local-development-secret-key-not-for-production AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE
export Logging__LogLevel__Default=Warning
CP_URL="http://127.0.0.1:$CP_PORT"
sleep 2
(cd "$(dirname "$CP_DLL")" && ASPNETCORE_URLS="$CP_URL" Standalone__Urls="$CP_URL" start control-plane dotnet "$CP_DLL"; echo "${PIDS[-1]}" >"$WORK/cp.pid")
PIDS+=("$(cat "$WORK/cp.pid")")
for _ in $(seq 120); do
  code="$(curl -s -o /dev/null -w '%{http_code}' "$CP_URL/console/" || true)"
  [[ "$code" == 200 ]] && break
  sleep 0.5
done
[[ "$code" == 200 ]] || { tail -30 "$WORK/control-plane.log" >&2; echo "the control plane did not serve /console" >&2; exit 1; }

LIB="$REPO/bench/lib/consolebench.py"
python3 -c 'import boto3, sys; boto3.client("ecs", endpoint_url=sys.argv[1]).create_cluster(clusterName=sys.argv[2])' "$CP_URL" "$CLUSTER"
# The bench tasks need no task metadata endpoint.
(cd "$(dirname "$WORKER_DLL")" && Worker__Cluster="$CLUSTER" Worker__InstanceId="$INSTANCE_ID" Worker__StateDirectory="$WORK/worker" \
  Worker__MemoryMiB=8192 Worker__Cpu=8192 Worker__HeartbeatSeconds=5 Worker__ContainerStopTimeoutSeconds=1 Worker__MetadataPort=-1 \
  start worker dotnet "$WORKER_DLL"; echo "${PIDS[-1]}" >"$WORK/worker.pid")
PIDS+=("$(cat "$WORK/worker.pid")")

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
