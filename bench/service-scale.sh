#!/usr/bin/env bash
# Service scale benchmark: a REPLICA service scaled 0 -> 50 -> 0 through the ECS API against raw
# docker on the same engine, the storage requests and function executions that costs per task,
# and the storage cost of one reconcile with and without 2,000 other tasks in the cluster.
#
#   bash bench/service-scale.sh [--no-build] [--quick] [--no-wait] [--keep-logs] [--repeats N]
#
# Builds the control plane and the worker (Release), starts a fresh in-memory Azurite with
# --debug (one log record per storage request), the control plane standalone and one worker on
# free ports, runs bench/lib/servicescale.py, prints Markdown tables and writes them to
# bench/results/service-scale.md (raw numbers: service-scale.json). Everything it started,
# containers included, is stopped on exit.
#
#   --no-build    use the existing Release build (src/{Functions,Worker}/bin/Release/net10.0)
#   --quick       10 tasks, one run, 200 other task rows: checks the script in about a minute
#   --no-wait     measure at once, even while a test run or another benchmark is running
#   --keep-logs   keep the work directory (Azurite debug log, process logs) after the run
#   --repeats N   N cycles of 0 -> 50 -> 0 each side instead of 3 (a cycle pair takes about a minute)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
BUILD=1 QUICK=0 WAIT=1 KEEP_LOGS=0 REPEATS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --quick) QUICK=1 ;;
    --no-wait) WAIT=0 ;;
    --keep-logs) KEEP_LOGS=1 ;;
    --repeats) REPEATS="${2:?--repeats needs a number}"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

for tool in python3 azurite dotnet docker xargs pgrep; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
docker image inspect local/busybox:latest >/dev/null 2>&1 \
  || { echo "missing image local/busybox:latest (see ARCHITECTURE.md, 'Facts about the machines')" >&2; exit 1; }

# Shared machine: a test run or another benchmark would pollute the numbers (and a build would
# replace the DLLs under a running test). Wait for them, polling every 15 s, up to 30 minutes.
BUSY_PATTERN='dotnet test|vstest|testhost|read-throughput.sh|run-task.sh'
BUSY_NOTE=""
if [[ $WAIT -eq 1 && $QUICK -eq 0 ]]; then
  waited=0
  while pgrep -f "$BUSY_PATTERN" >/dev/null; do
    if [[ $waited -eq 0 ]]; then
      echo "== waiting for other heavy jobs to finish (polling every 15 s, up to 30 min):"
      pgrep -af "$BUSY_PATTERN" | cut -c1-150 | sed 's/^/   /'
    fi
    if [[ $waited -ge 1800 ]]; then
      BUSY_NOTE="measured while other jobs were still running after a 30-minute wait: $(pgrep -f "$BUSY_PATTERN" | wc -l) processes matching '$BUSY_PATTERN'"
      echo "   still busy after 30 min; measuring anyway (the report says so)"
      break
    fi
    sleep 15
    waited=$((waited + 15))
  done
  [[ $waited -gt 0 && -z "$BUSY_NOTE" ]] && echo "   quiet after ${waited} s"
elif pgrep -f "$BUSY_PATTERN" >/dev/null; then
  BUSY_NOTE="measured while other jobs ran (--no-wait or --quick): $(pgrep -f "$BUSY_PATTERN" | wc -l) processes matching '$BUSY_PATTERN'"
  echo "note: $BUSY_NOTE"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-service-scale.XXXXXX")"
PIDS=()
CLUSTER="svcscale-$(date +%H%M%S)-$$"
INSTANCE_ID="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

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
  # Containers of this run only: the worker's (by cluster label) and the raw baseline's.
  local ids
  ids="$(docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER"; \
         docker ps -aq --filter "label=ecs-worker.instance-id=$INSTANCE_ID"; \
         docker ps -aq --filter "label=bench-service-scale=$CLUSTER")"
  ids="$(echo "$ids" | sort -u | grep . || true)"
  [[ -n "$ids" ]] && echo "$ids" | xargs -r docker rm -f >/dev/null 2>&1 || true
  if [[ $rc -ne 0 || $KEEP_LOGS -eq 1 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

read -r AZ_QUEUE_PORT AZ_TABLE_PORT CP_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

start() {  # start NAME command... : own session, output to $WORK/NAME.log
  local name="$1"; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  echo "  started $name (pid $!)"
}

echo "== setup (work directory $WORK)"
if [[ $BUILD -eq 1 ]]; then
  for project in Functions/Serverless.Functions.csproj Worker/Serverless.Worker.csproj; do
    echo "  dotnet build -c Release src/$project"
    dotnet build -c Release "$REPO/src/$project" -nologo -v quiet >>"$WORK/build.log" 2>&1 \
      || { tail -40 "$WORK/build.log" >&2; echo "build failed (log: $WORK/build.log)" >&2; exit 1; }
  done
fi
CP_DLL="$REPO/src/Functions/bin/Release/net10.0/Serverless.Functions.dll"
WORKER_DLL="$REPO/src/Worker/bin/Release/net10.0/Serverless.Worker.dll"
for dll in "$CP_DLL" "$WORKER_DLL"; do
  [[ -f "$dll" ]] || { echo "missing $dll (run without --no-build)" >&2; exit 1; }
done

(
  cd "$WORK"   # azurite writes its extent files to the working directory
  start azurite azurite --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
    --blobPort 0 --queuePort "$AZ_QUEUE_PORT" --tablePort "$AZ_TABLE_PORT" --debug "$WORK/azurite-debug.log"
  echo "${PIDS[-1]}" >"$WORK/azurite.pid"
)
AZURITE_PID="$(cat "$WORK/azurite.pid")"; PIDS+=("$AZURITE_PID")
(cd "$BENCH/lib" && python3 -c "import readbench, sys; readbench.wait_ports([$AZ_QUEUE_PORT, $AZ_TABLE_PORT], $AZURITE_PID, 30)") \
  || { tail -20 "$WORK/azurite.log" >&2; exit 1; }

AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_KEY;QueueEndpoint=http://127.0.0.1:$AZ_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://127.0.0.1:$AZ_TABLE_PORT/devstoreaccount1;"
export Ecs__AccessKeys="AKIALOCALDEVELOPMENT:local-development-secret-key-not-for-production"
export Ecs__Region=us-east-1 Ecs__AccountId=000000000000
# A known wake port: the one-reconcile phase puts its message on the queue itself and wakes the
# control plane as any sender does (an unannounced message waits for the 120 s safety-net poll).
CP_WAKE_PORT="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export Ecs__WakePort="$CP_WAKE_PORT"
export DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production
# The worker's Azure SDK sends no User-Agent: Azurite's log then tells its requests from ours.
CP_URL="http://127.0.0.1:$CP_PORT"
(
  cd "$(dirname "$CP_DLL")"
  export ASPNETCORE_URLS="$CP_URL" Standalone__Urls="$CP_URL"
  export Logging__LogLevel__Default=Information Logging__LogLevel__Microsoft=Warning
  # One line per queue/timer execution ("Function X completed message ..."), which the
  # standalone host writes at Debug.
  export Logging__LogLevel__Function=Debug
  start control-plane dotnet "$CP_DLL" --urls "$CP_URL"
  echo "${PIDS[-1]}" >"$WORK/cp.pid"
)
CP_PID="$(cat "$WORK/cp.pid")"; PIDS+=("$CP_PID")

WORKER_MEMORY=4096     # 50 tasks x 16 MiB = 800 MiB, with room to spare
mkdir -p "$WORK/worker-state"
(
  cd "$(dirname "$WORKER_DLL")"
  export AZURE_TELEMETRY_DISABLED=true
  export Worker__Cluster="$CLUSTER" Worker__InstanceId="$INSTANCE_ID" Worker__StateDirectory="$WORK/worker-state"
  export Worker__MemoryMiB=$WORKER_MEMORY Worker__Cpu=4096
  export Logging__LogLevel__Default=Information Logging__LogLevel__Microsoft=Warning
  # Single-line, time-stamped console lines, as the control plane writes them (to read the timeline).
  export Logging__Console__FormatterName=simple Logging__Console__FormatterOptions__SingleLine=true
  export Logging__Console__FormatterOptions__TimestampFormat="HH:mm:ss.fff "
  start worker dotnet "$WORKER_DLL"
  echo "${PIDS[-1]}" >"$WORK/worker.pid"
)
WORKER_PID="$(cat "$WORK/worker.pid")"; PIDS+=("$WORKER_PID")

cd "$BENCH/lib"
echo "  waiting for the control plane at $CP_URL"
python3 -c "import readbench; readbench.wait_ready('$CP_URL', 120)" \
  || { echo "--- last lines of control-plane.log:" >&2; tail -30 "$WORK/control-plane.log" >&2; exit 1; }

ARGS=(--count 50 --repeats "$REPEATS" --warmup 10 --idle-seconds 15 --other-tasks 2000 --reconcile-samples 3)
[[ $QUICK -eq 1 ]] && ARGS=(--count 10 --repeats 1 --warmup 3 --idle-seconds 4 --other-tasks 200 --reconcile-samples 1 --quick)
mkdir -p "$BENCH/results"
OUT="$BENCH/results/service-scale.md" JSON="$BENCH/results/service-scale.json"
if [[ $QUICK -eq 1 ]]; then OUT="$WORK/service-scale.md" JSON="$WORK/service-scale.json"; fi
SERVICESCALE_BUSY_PATTERN="$BUSY_PATTERN" SERVICESCALE_BUSY_NOTE="$BUSY_NOTE" \
python3 servicescale.py run --url "$CP_URL" --cluster "$CLUSTER" \
  --cp-log "$WORK/control-plane.log" --worker-log "$WORK/worker.log" --azurite-log "$WORK/azurite-debug.log" \
  --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
  --table-port "$AZ_TABLE_PORT" --queue-port "$AZ_QUEUE_PORT" --worker-memory "$WORKER_MEMORY" --wake-port "$CP_WAKE_PORT" \
  --out "$OUT" --json "$JSON" "${ARGS[@]}"
if [[ $QUICK -eq 1 ]]; then
  echo "(--quick: bench/results untouched)"
else
  echo "written: bench/results/service-scale.md (raw numbers: service-scale.json)"
fi
