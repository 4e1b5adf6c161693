#!/usr/bin/env bash
# Capacity benchmark (issue 16):
#   (a) tasks waiting for capacity (PROVISIONING) -> RUNNING on workers the pool started for them,
#       split into the scaling decision, the worker's start and registration, and the task start;
#   (b) an awsvpc task's RunTask -> RUNNING vs a bridge task's on one worker, alternating.
#
#   bash bench/capacity.sh [--no-build] [--quick] [--network-only] [--keep-logs]
#
# Builds the control plane and the worker (Release), starts a fresh in-memory Azurite, the control
# plane standalone (managed scaling every 2 s, scale-in after 4 s, as the end-to-end test), one
# static worker (cluster for (b)) and a pool agent (`Pool__Name`, as `ECS_POOL` makes run.sh start
# one: 0..2 workers of 1024 CPU / 256 MiB) behind a capacity provider with managed scaling (cluster
# for (a)), all on free ports. 5 scale-out samples of 2 tasks, 20 network samples per mode.
# Prints a Markdown report and writes it to bench/results/capacity.md (raw numbers: capacity.json).
#
#   --no-build    use the existing Release builds (src/Functions, src/Worker bin/Release/net10.0)
#   --quick       2 scale-out samples, 5 network samples per mode: checks the script in ~2 minutes
#   --network-only  (b) alone (no scale-out samples)
#   --keep-logs   keep the work directory (every process's log)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
BUILD=1 KEEP_LOGS=0
RUN_ARGS=()
SCALING_SECONDS=2 SCALE_IN_SECONDS=4 POOL_POLL_SECONDS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) RUN_ARGS+=(--scale-samples 2 --network-samples 5 --warmup 1) ;;
    --network-only) RUN_ARGS+=(--scale-samples 0) ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

for tool in python3 azurite dotnet docker; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (bash scripts/install-deps.sh)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "the Docker engine does not answer (bash scripts/install-deps.sh starts it)" >&2; exit 1; }
docker image inspect local/busybox:latest >/dev/null 2>&1 \
  || { echo "missing image local/busybox:latest (bash scripts/install-deps.sh makes it)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-capacity-bench.XXXXXX")"
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-capacity-$RUN_ID"
STATIC_CLUSTER="bench-static-$RUN_ID"
PROVIDER="bench-cp-$RUN_ID"
POOL="bench-pool-$RUN_ID"
POOL_DIR="$WORK/pool"
STATIC_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Each process runs in its own session (setsid): its process group is exactly what we started
  # (the pool agent's workers are in its group; the agent also stops them on SIGTERM).
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  # Containers and task networks of this run only: the engine is shared. The static worker's own
  # containers too (a spare pause container carries its instance id, no cluster), should it have been
  # killed before its shutdown removed them.
  local ids nets
  ids="$( { docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER";
            docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$STATIC_CLUSTER";
            docker ps -aq --filter "label=ecs-worker.instance-id=$STATIC_ID"; } 2>/dev/null | sort -u)"
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null 2>&1 || true
  nets="$(docker network ls -q --filter "label=ecs-worker.instance-id=$STATIC_ID" 2>/dev/null)"
  [[ -n "$nets" ]] && docker network rm $nets >/dev/null 2>&1 || true
  if [[ $rc -ne 0 || $KEEP_LOGS -eq 1 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)

start() {  # start NAME command... : runs in its own session, logs to $WORK/NAME.log
  local name="$1"; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  echo "  started $name (pid $!)"
}

echo "== setup (work directory $WORK, clusters $CLUSTER and $STATIC_CLUSTER)"
if [[ $BUILD -eq 1 ]]; then
  for project in src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj; do
    echo "  dotnet build -c Release $project"
    dotnet build -c Release "$REPO/$project" -nologo -v quiet >>"$WORK/build.log" 2>&1 \
      || { tail -40 "$WORK/build.log" >&2; echo "build failed (log: $WORK/build.log)" >&2; exit 1; }
  done
fi
CP_DIR="$REPO/src/Functions/bin/Release/net10.0"
WORKER_DIR="$REPO/src/Worker/bin/Release/net10.0"
for dll in "$CP_DIR/Serverless.Functions.dll" "$WORKER_DIR/Serverless.Worker.dll"; do
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
# Single-line timestamped logs from every process: the driver reads its marks from them.
export Logging__Console__FormatterName=simple Logging__Console__FormatterOptions__SingleLine=true \
  "Logging__Console__FormatterOptions__TimestampFormat=HH:mm:ss.fff "
OURS_URL="http://127.0.0.1:$OURS_PORT"

cd "$CP_DIR"
start control-plane env ASPNETCORE_URLS="$OURS_URL" Standalone__Urls="$OURS_URL" \
  Capacity__ScalingSeconds="$SCALING_SECONDS" Capacity__ScaleInAfterSeconds="$SCALE_IN_SECONDS" \
  dotnet "$CP_DIR/Serverless.Functions.dll" --urls "$OURS_URL"
CP_PID="${PIDS[-1]}"
cd "$BENCH/lib"
if ! python3 readbench.py wait "$OURS_URL" --timeout 120; then
  tail -30 "$WORK/control-plane.log" >&2; exit 1
fi
python3 capacitybench.py setup --url "$OURS_URL" --cluster "$CLUSTER" --static-cluster "$STATIC_CLUSTER" \
  --provider "$PROVIDER" --pool "$POOL"

cd "$WORKER_DIR"
mkdir -p "$WORK/worker-state" "$POOL_DIR"
start worker env Worker__Cluster="$STATIC_CLUSTER" Worker__InstanceId="$STATIC_ID" \
  Worker__StateDirectory="$WORK/worker-state" dotnet "$WORKER_DIR/Serverless.Worker.dll"
WORKER_PID="${PIDS[-1]}"
# The pool agent as run.sh starts it for ECS_POOL=<pool>:<provider>:0:2, with the workers' size
# given so managed scaling knows it before one registers. Its workers inherit these settings; the
# metadata endpoint is off for them, as in the end-to-end test (the static worker has its own).
start pool-agent env Worker__Cluster="$CLUSTER" Pool__Name="$POOL" Worker__CapacityProvider="$PROVIDER" \
  Pool__MinSize=0 Pool__MaxSize=2 Pool__PollSeconds="$POOL_POLL_SECONDS" Pool__StateDirectory="$POOL_DIR" \
  Worker__Cpu=1024 Worker__MemoryMiB=256 Worker__MetadataPort=-1 \
  dotnet "$WORKER_DIR/Serverless.Worker.dll"
AGENT_PID="${PIDS[-1]}"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine and the driver share these cores"
python3 capacitybench.py run --url "$OURS_URL" --cluster "$CLUSTER" --static-cluster "$STATIC_CLUSTER" \
  --provider "$PROVIDER" --pool "$POOL" --pool-dir "$POOL_DIR" \
  --scaling-seconds "$SCALING_SECONDS" --pool-poll-seconds "$POOL_POLL_SECONDS" \
  --cp-log "$WORK/control-plane.log" --agent-log "$WORK/pool-agent.log" \
  --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --agent-pid "$AGENT_PID" --azurite-pid "$AZURITE_PID" \
  --out "$BENCH/results/capacity.md" --json "$BENCH/results/capacity.json" "${RUN_ARGS[@]}"
echo "written: bench/results/capacity.md (raw numbers: capacity.json)"
