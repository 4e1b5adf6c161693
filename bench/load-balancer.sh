#!/usr/bin/env bash
# Load balancer benchmark: the data plane (src/LoadBalancer) in front of one busybox httpd task vs
# the task's own host port, and failed requests during a rolling and a blue/green deployment.
#
#   bash bench/load-balancer.sh [--no-build] [--quick] [--keep-logs]
#
# Builds the control plane, the worker and the load balancer (Release), starts a fresh in-memory
# Azurite, the control plane standalone, one worker on the local Docker engine and the data plane,
# all on free ports, then, through boto3 (ecs, elbv2):
#   1. proxy cost: a service of one busybox `httpd` task behind a listener; `wrk -c32 -d10s --latency`
#      straight to the task's host port and through the listener (5 rounds, alternating which goes
#      first; the bar goes by the median round). On 2+ CPUs wrk runs pinned to the last CPU with one
#      thread (taskset), so the generator takes at most one CPU (--no-pin in lbbench.py turns it
#      off); then p50/p99 open loop at 200 req/s, 20 s each way in 4 alternating slices;
#   2. deployments: a 2-task service behind a listener rolled to a new revision (100/200 %), and a
#      2-task BLUE_GREEN service updated, each under a steady 200 req/s open-loop stream: failed
#      requests and the deployment's duration.
# Prints a Markdown report and writes it to bench/results/load-balancer.md (raw: load-balancer.json).
#
#   --no-build    use the existing Release builds
#   --quick       3 s wrk runs, 1 round, 4 s latency (the deployments take what they take): ~3 minutes
#   --keep-logs   keep the work directory (every process's log)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
BUILD=1 KEEP_LOGS=0
RUN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) RUN_ARGS+=(--duration 3 --warmup 1 --rounds 1 --latency-duration 4 --slices 2 --quiet-wait 2) ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

for tool in python3 azurite dotnet docker wrk; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (bash scripts/install-deps.sh)" >&2; exit 1; }
done
python3 -c 'import boto3' 2>/dev/null || { echo "missing: python3 boto3 (bash scripts/install-deps.sh)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "the Docker engine does not answer (bash scripts/install-deps.sh starts it)" >&2; exit 1; }
docker image inspect local/busybox:latest >/dev/null 2>&1 \
  || { echo "missing image local/busybox:latest (bash scripts/install-deps.sh makes it)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-lb-bench.XXXXXX")"
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-lb-$RUN_ID"
INSTANCE_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Each process runs in its own session (setsid): its process group is exactly what we started.
  # Last started first, each given 5 s, so Azurite goes last and the others stop cleanly against it.
  local i pid
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
    pid="${PIDS[$i]}"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  # Containers of this run's cluster only: the engine is shared, and the worker leaves its
  # containers running when it stops (the next start would adopt them).
  local ids
  ids="$(docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER" 2>/dev/null)"
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null 2>&1 || true
  if [[ $rc -ne 0 || $KEEP_LOGS -eq 1 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT L1 L2 L3 L4 < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

start() {  # start NAME command... : runs in its own session, logs to $WORK/NAME.log
  local name="$1"; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  echo "  started $name (pid $!)"
}

echo "== setup (work directory $WORK, cluster $CLUSTER)"
if [[ $BUILD -eq 1 ]]; then
  # Only what is measured: a test project that does not compile at the moment cannot stop it.
  for project in src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj \
                 src/LoadBalancer/Serverless.LoadBalancer.csproj; do
    echo "  dotnet build -c Release $project"
    dotnet build -c Release "$REPO/$project" -nologo -v quiet >>"$WORK/build.log" 2>&1 \
      || { tail -40 "$WORK/build.log" >&2; echo "build failed (log: $WORK/build.log)" >&2; exit 1; }
  done
fi
CP_DIR="$REPO/src/Functions/bin/Release/net10.0"
WORKER_DIR="$REPO/src/Worker/bin/Release/net10.0"
LB_DIR="$REPO/src/LoadBalancer/bin/Release/net10.0"
for dll in "$CP_DIR/Serverless.Functions.dll" "$WORKER_DIR/Serverless.Worker.dll" "$LB_DIR/Serverless.LoadBalancer.dll"; do
  [[ -f "$dll" ]] || { echo "missing $dll (run without --no-build)" >&2; exit 1; }
done

cd "$WORK"   # azurite writes its extent files to the working directory
start azurite azurite --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
  --blobPort 0 --queuePort "$AZ_QUEUE_PORT" --tablePort "$AZ_TABLE_PORT"
AZURITE_PID="${PIDS[-1]}"
python3 "$BENCH/lib/readbench.py" wait-port --pid "$AZURITE_PID" "$AZ_QUEUE_PORT" "$AZ_TABLE_PORT" \
  || { tail -20 "$WORK/azurite.log" >&2; exit 1; }

AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_KEY;QueueEndpoint=http://127.0.0.1:$AZ_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://127.0.0.1:$AZ_TABLE_PORT/devstoreaccount1;"
export Ecs__AccessKeys="AKIALOCALDEVELOPMENT:local-development-secret-key-not-for-production"
export Ecs__Region=us-east-1 Ecs__AccountId=000000000000
export DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production
OURS_URL="http://127.0.0.1:$OURS_PORT"

cd "$CP_DIR"
start control-plane env ASPNETCORE_URLS="$OURS_URL" Standalone__Urls="$OURS_URL" \
  dotnet "$CP_DIR/Serverless.Functions.dll" --urls "$OURS_URL"
CP_PID="${PIDS[-1]}"
cd "$BENCH/lib"
if ! python3 readbench.py wait "$OURS_URL" --timeout 120; then
  tail -30 "$WORK/control-plane.log" >&2; exit 1
fi
python3 -c "
import boto3, sys
from signing import ACCESS_KEY, SECRET_KEY, REGION
boto3.client('ecs', endpoint_url='$OURS_URL', region_name=REGION, aws_access_key_id=ACCESS_KEY,
             aws_secret_access_key=SECRET_KEY).create_cluster(clusterName='$CLUSTER')"

# The worker and the data plane with their defaults (the data plane learns of changes by its wake).
cd "$WORKER_DIR"
mkdir -p "$WORK/worker-state"
start worker env Worker__Cluster="$CLUSTER" Worker__InstanceId="$INSTANCE_ID" \
  Worker__StateDirectory="$WORK/worker-state" dotnet "$WORKER_DIR/Serverless.Worker.dll"
WORKER_PID="${PIDS[-1]}"
cd "$LB_DIR"
start load-balancer dotnet "$LB_DIR/Serverless.LoadBalancer.dll"
LB_PID="${PIDS[-1]}"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine, wrk and the driver share these cores"
python3 lbbench.py run --url "$OURS_URL" --cluster "$CLUSTER" --ports "$L1" "$L2" "$L3" "$L4" \
  --lb-pid "$LB_PID" --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
  --out "$BENCH/results/load-balancer.md" --json "$BENCH/results/load-balancer.json" "${RUN_ARGS[@]}"
echo "written: bench/results/load-balancer.md (raw numbers: load-balancer.json)"
