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

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
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

for tool in python3 azurite dotnet docker; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (bash scripts/install-deps.sh)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "the Docker engine does not answer (bash scripts/install-deps.sh starts it)" >&2; exit 1; }
docker image inspect local/busybox:latest >/dev/null 2>&1 \
  || { echo "missing image local/busybox:latest (bash scripts/install-deps.sh makes it)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-runtask-bench.XXXXXX")"
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-runtask-$RUN_ID"
INSTANCE_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
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
  # Containers of this run only: the engine is shared. The worker leaves its containers running
  # when it stops (the next start would adopt them), so they go here.
  local ids
  ids="$( { docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER";
            docker ps -aq --filter "label=bench-run-task=$RUN_ID"; } 2>/dev/null | sort -u)"
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null 2>&1 || true
  if [[ $rc -ne 0 || $KEEP_LOGS -eq 1 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
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
  --blobPort 0 --queuePort "$AZ_QUEUE_PORT" --tablePort "$AZ_TABLE_PORT" --debug "$WORK/azurite-debug.log"
AZURITE_PID="${PIDS[-1]}"
python3 "$BENCH/lib/readbench.py" wait-port --pid "$AZURITE_PID" "$AZ_QUEUE_PORT" "$AZ_TABLE_PORT" \
  || { tail -20 "$WORK/azurite.log" >&2; exit 1; }

AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_KEY;QueueEndpoint=http://127.0.0.1:$AZ_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://127.0.0.1:$AZ_TABLE_PORT/devstoreaccount1;"
export Ecs__AccessKeys="AKIALOCALDEVELOPMENT:local-development-secret-key-not-for-production"
export Ecs__Region=us-east-1 Ecs__AccountId=000000000000
export DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production
OURS_URL="http://127.0.0.1:$OURS_PORT"

# The control plane at its default log level (host.json: Information: one line per API call and
# per applied task report), plus the standalone host's per-invocation lines of its queue and timer
# functions (category Function.<name>, Debug), which count function executions.
cd "$CP_DIR"
start control-plane env "Logging__LogLevel__Function=Debug" \
  ASPNETCORE_URLS="$OURS_URL" Standalone__Urls="$OURS_URL" \
  dotnet "$CP_DIR/Serverless.Functions.dll" --urls "$OURS_URL"
CP_PID="${PIDS[-1]}"
cd "$BENCH/lib"
if ! python3 readbench.py wait "$OURS_URL" --timeout 120; then
  tail -30 "$WORK/control-plane.log" >&2; exit 1
fi
python3 runtask.py setup "$OURS_URL" --cluster "$CLUSTER"

# The worker with its defaults. AZURE_TELEMETRY_DISABLED drops the Azure SDK's User-Agent header
# from its storage requests: that is how Azurite's log tells them from the control plane's.
# Single-line timestamped logs (like the control plane's) and heartbeat lines (Debug) let the
# driver follow it without calling the API.
cd "$WORKER_DIR"
mkdir -p "$WORK/worker-state"
start worker env AZURE_TELEMETRY_DISABLED=true \
  Worker__Cluster="$CLUSTER" Worker__InstanceId="$INSTANCE_ID" Worker__StateDirectory="$WORK/worker-state" \
  Logging__Console__FormatterName=simple Logging__Console__FormatterOptions__SingleLine=true \
  "Logging__Console__FormatterOptions__TimestampFormat=HH:mm:ss.fff " \
  "Logging__LogLevel__Serverless.Worker.Registration.Heartbeat=Debug" \
  dotnet "$WORKER_DIR/Serverless.Worker.dll"
WORKER_PID="${PIDS[-1]}"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine and the driver share these cores"
python3 runtask.py run --url "$OURS_URL" --cluster "$CLUSTER" --run-id "$RUN_ID" \
  --azurite-log "$WORK/azurite-debug.log" --cp-log "$WORK/control-plane.log" \
  --worker-log "$WORK/worker.log" \
  --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
  --out "$BENCH/results/run-task.md" --json "$BENCH/results/run-task.json" "${RUN_ARGS[@]}"
echo "written: bench/results/run-task.md (raw numbers: run-task.json)"
