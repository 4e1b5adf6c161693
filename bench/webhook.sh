#!/usr/bin/env bash
# Deploy webhook benchmark (issue 15): a signed delivery to POST /deploy received -> the new
# deployment's first task RUNNING, vs the same change made with RegisterTaskDefinition +
# UpdateService, alternating in the same run.
#
#   bash bench/webhook.sh [--no-build] [--quick] [--keep-logs]
#
# Builds the control plane and the worker (Release), starts a fresh in-memory Azurite, the control
# plane standalone (with the development webhook secret) and one worker on free ports, creates two
# identical services of one busybox task, then deploys a new image tag to each in turn (20 samples
# per arm). Both arms use one in-process client (SigV4 with botocore for the ECS calls and the
# polling, HMAC-SHA256 for the delivery): no aws CLI or curl start-up is measured.
# Prints a Markdown table and writes it to bench/results/webhook.md (raw numbers: webhook.json).
#
#   --no-build    use the existing Release builds (src/Functions, src/Worker bin/Release/net10.0)
#   --quick       5 samples per arm: checks the script in about a minute
#   --keep-logs   keep the work directory (both processes' logs)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
BUILD=1 KEEP_LOGS=0
RUN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) RUN_ARGS+=(--samples 5 --warmup 1) ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-webhook-bench.XXXXXX")"
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-webhook-$RUN_ID"
INSTANCE_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
TAGS=("local/busybox:bench-webhook-$RUN_ID-a" "local/busybox:bench-webhook-$RUN_ID-b")
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Each process runs in its own session (setsid): its process group is exactly what we started.
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  # Containers of this run only (the engine is shared), then this run's two tags (the image stays).
  local ids
  ids="$(docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER" 2>/dev/null)"
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null 2>&1 || true
  docker rmi "${TAGS[@]}" >/dev/null 2>&1 || true
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

echo "== setup (work directory $WORK, cluster $CLUSTER)"
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
# Two tags of the local image: each sample flips its service between them (a real image change,
# nothing to pull).
for tag in "${TAGS[@]}"; do docker tag local/busybox:latest "$tag"; done

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
# The development secret of local.settings.sample.json (webhookbench.py signs with it).
export Deploy__WebhookSecrets="local-development-webhook-secret-not-for-production"
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
python3 webhookbench.py setup --url "$OURS_URL" --cluster "$CLUSTER" --run-id "$RUN_ID"

cd "$WORKER_DIR"
mkdir -p "$WORK/worker-state"
start worker env Worker__Cluster="$CLUSTER" Worker__InstanceId="$INSTANCE_ID" \
  Worker__StateDirectory="$WORK/worker-state" dotnet "$WORKER_DIR/Serverless.Worker.dll"
WORKER_PID="${PIDS[-1]}"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine and the driver share these cores"
python3 webhookbench.py run --url "$OURS_URL" --cluster "$CLUSTER" --run-id "$RUN_ID" \
  --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
  --out "$BENCH/results/webhook.md" --json "$BENCH/results/webhook.json" "${RUN_ARGS[@]}"
echo "written: bench/results/webhook.md (raw numbers: webhook.json)"
