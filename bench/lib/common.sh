# Shared set-up of the benchmark scripts in bench/: sourced, never run.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Sets REPO, BENCH, BENCH_LIB and the Release build directories; keeps the processes a run starts in
# PIDS (each in its own session, so its process group is exactly what was started). The functions:
#   bench_require TOOL...              exit 1 naming the first tool not on PATH
#   bench_require_docker               the engine answers and local/busybox:latest is there
#   bench_wait_quiet PATTERN           wait (WAIT=1, QUICK=0) for other heavy jobs; sets BUSY_NOTE
#   bench_workdir NAME                 WORK=a fresh temporary directory; the cleanup trap on exit
#   bench_free_ports N                 N distinct free TCP ports, on one line
#   bench_start NAME [DIR] -- CMD...   CMD in its own session (in DIR), output to $WORK/NAME.log
#   bench_build PROJECT...             dotnet build -c Release (paths from the repository root)
#   bench_require_files FILE...        exit 1 naming a missing build output
#   bench_start_azurite [ARG...]       in-memory Azurite on AZ_QUEUE_PORT/AZ_TABLE_PORT; AZURITE_PID
#   bench_storage_env                  export the storage connection, access key, region, account
#   bench_start_control_plane URL [VAR=VALUE...]   the standalone control plane; CP_PID
#   bench_wait_ready URL [LOG]         wait for the API to answer (120 s), else tail LOG and exit 1
#   bench_start_worker CLUSTER INSTANCE_ID [VAR=VALUE...]   one worker; WORKER_PID
#   bench_stop_all                     stop every process started so far (the cleanup does it too)
# The cleanup removes the containers (and networks) matching the docker filters a script lists in
# BENCH_CONTAINER_FILTERS (BENCH_NETWORK_FILTERS), runs BENCH_CLEANUP_HOOK if set, and keeps $WORK
# when the run failed or KEEP_LOGS=1.

BENCH_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$BENCH_LIB")"
REPO="$(dirname "$BENCH")"
CP_DIR="$REPO/src/Functions/bin/Release/net10.0"
WORKER_DIR="$REPO/src/Worker/bin/Release/net10.0"
LB_DIR="$REPO/src/LoadBalancer/bin/Release/net10.0"
CP_DLL="$CP_DIR/Serverless.Functions.dll"
WORKER_DLL="$WORKER_DIR/Serverless.Worker.dll"
LB_DLL="$LB_DIR/Serverless.LoadBalancer.dll"
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PIDS=()
BENCH_CONTAINER_FILTERS=()
BENCH_NETWORK_FILTERS=()
BENCH_STOP_IN_REVERSE=0      # 1: stop the last started first, each in turn (Azurite, started first, last)
BENCH_STOP_SECONDS=5         # how long a process group has after TERM before KILL
BENCH_CLEANUP_HOOK=""
BENCH_LOGS_NAME="logs"
KEEP_LOGS="${KEEP_LOGS:-0}"
# Single-line, time-stamped console lines (the drivers read their timelines from them).
BENCH_SINGLE_LINE_LOGS=(Logging__Console__FormatterName=simple Logging__Console__FormatterOptions__SingleLine=true
  "Logging__Console__FormatterOptions__TimestampFormat=HH:mm:ss.fff ")
# Runs that count storage requests and function executions: the control plane writes one line per
# queue/timer execution ("Function X completed message ..."), which the standalone host logs at Debug;
# the worker's Azure SDK sends no User-Agent, which is how Azurite's log tells its requests from ours.
BENCH_CP_COUNTING_ENV=(Logging__LogLevel__Default=Information Logging__LogLevel__Microsoft=Warning Logging__LogLevel__Function=Debug)
BENCH_WORKER_COUNTING_ENV=(AZURE_TELEMETRY_DISABLED=true Logging__LogLevel__Default=Information
  Logging__LogLevel__Microsoft=Warning "${BENCH_SINGLE_LINE_LOGS[@]}")

bench_require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (bash scripts/install-deps.sh)" >&2; exit 1; }
  done
}

bench_require_docker() {
  docker info >/dev/null 2>&1 || { echo "the Docker engine does not answer (bash scripts/install-deps.sh starts it)" >&2; exit 1; }
  docker image inspect local/busybox:latest >/dev/null 2>&1 \
    || { echo "missing image local/busybox:latest (bash scripts/install-deps.sh makes it)" >&2; exit 1; }
}

# Shared machine: a test run or another benchmark would pollute the numbers (and a build would
# replace the DLLs under a running test). Wait for them, polling every 15 s, up to 30 minutes.
bench_wait_quiet() {
  BUSY_PATTERN="$1"
  BUSY_NOTE=""
  if [[ ${WAIT:-1} -eq 1 && ${QUICK:-0} -eq 0 ]]; then
    local waited=0
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
    if [[ $waited -gt 0 && -z "$BUSY_NOTE" ]]; then echo "   quiet after ${waited} s"; fi
  elif pgrep -f "$BUSY_PATTERN" >/dev/null; then
    BUSY_NOTE="measured while other jobs ran (--no-wait or --quick): $(pgrep -f "$BUSY_PATTERN" | wc -l) processes matching '$BUSY_PATTERN'"
    echo "note: $BUSY_NOTE"
  fi
}

bench_stop_pid() {  # TERM the process group (or the process)
  local pid="$1"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
}

bench_reap_pid() {  # up to BENCH_STOP_SECONDS for the process to end, then KILL what is left of its group
  local pid="$1" _
  for _ in $(seq $((BENCH_STOP_SECONDS * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

bench_stop_all() {  # every process in PIDS (in reverse, one by one, with BENCH_STOP_IN_REVERSE=1); PIDS is emptied
  local i pid
  if [[ $BENCH_STOP_IN_REVERSE -eq 1 ]]; then
    for (( i=${#PIDS[@]}-1; i>=0; i-- )); do bench_stop_pid "${PIDS[$i]}"; bench_reap_pid "${PIDS[$i]}"; done
  else
    for pid in "${PIDS[@]}"; do bench_stop_pid "$pid"; done
    for pid in "${PIDS[@]}"; do bench_reap_pid "$pid"; done
  fi
  PIDS=()
}

bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local filter ids nets
  bench_stop_all
  # Containers and networks of this run only: the engine is shared, and a worker leaves its
  # containers running when it stops (the next start would adopt them).
  if [[ ${#BENCH_CONTAINER_FILTERS[@]} -gt 0 ]]; then
    ids="$(for filter in "${BENCH_CONTAINER_FILTERS[@]}"; do docker ps -aq --filter "$filter"; done 2>/dev/null | sort -u)"
    if [[ -n "$ids" ]]; then echo "$ids" | xargs -r docker rm -f >/dev/null 2>&1 || true; fi
  fi
  if [[ ${#BENCH_NETWORK_FILTERS[@]} -gt 0 ]]; then
    nets="$(for filter in "${BENCH_NETWORK_FILTERS[@]}"; do docker network ls -q --filter "$filter"; done 2>/dev/null | sort -u)"
    if [[ -n "$nets" ]]; then echo "$nets" | xargs -r docker network rm >/dev/null 2>&1 || true; fi
  fi
  if [[ -n "$BENCH_CLEANUP_HOOK" ]]; then "$BENCH_CLEANUP_HOOK" || true; fi
  if [[ -n "${WORK:-}" ]]; then
    if [[ $rc -ne 0 || $KEEP_LOGS -eq 1 ]]; then
      echo "$BENCH_LOGS_NAME kept in $WORK" >&2
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}

bench_workdir() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  trap bench_cleanup EXIT INT TERM
}

# Distinct free ports, taken while all are held so two calls cannot return the same one.
bench_free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))' "$1"
}

bench_start() {  # bench_start NAME [DIR] -- COMMAND...: own session, in DIR (default: here), output to $WORK/NAME.log
  local name="$1" dir="."; shift
  if [[ "$1" != "--" ]]; then dir="$1"; shift; fi
  shift
  (cd "$dir" && exec setsid "$@") >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  echo "  started $name (pid $!)"
}

# Only what is measured: a test project that does not compile at the moment cannot stop a benchmark.
bench_build() {
  local project
  for project in "$@"; do
    echo "  dotnet build -c Release $project"
    dotnet build -c Release "$REPO/$project" -nologo -v quiet >>"$WORK/build.log" 2>&1 \
      || { tail -40 "$WORK/build.log" >&2; echo "build failed (log: $WORK/build.log)" >&2; exit 1; }
  done
}

bench_require_files() {
  local file
  for file in "$@"; do
    [[ -f "$file" ]] || { echo "missing $file (run without --no-build)" >&2; exit 1; }
  done
}

# Azurite writes its extent files to its working directory: $WORK. Extra arguments (--debug FILE)
# go to it as they are.
bench_start_azurite() {
  bench_start azurite "$WORK" -- azurite --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
    --blobPort 0 --queuePort "$AZ_QUEUE_PORT" --tablePort "$AZ_TABLE_PORT" "$@"
  AZURITE_PID="${PIDS[-1]}"
  python3 "$BENCH_LIB/readbench.py" wait-port --pid "$AZURITE_PID" "$AZ_QUEUE_PORT" "$AZ_TABLE_PORT" \
    || { tail -20 "$WORK/azurite.log" >&2; exit 1; }
}

bench_storage_env() {
  export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_KEY;QueueEndpoint=http://127.0.0.1:$AZ_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://127.0.0.1:$AZ_TABLE_PORT/devstoreaccount1;"
  export Ecs__AccessKeys="AKIALOCALDEVELOPMENT:local-development-secret-key-not-for-production"
  export Ecs__Region=us-east-1 Ecs__AccountId=000000000000
  export DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production
}

bench_start_control_plane() {  # URL [VAR=VALUE...]: the exported environment plus these
  local url="$1"; shift
  bench_start control-plane "$CP_DIR" -- env ASPNETCORE_URLS="$url" Standalone__Urls="$url" "$@" \
    dotnet "$CP_DLL" --urls "$url"
  CP_PID="${PIDS[-1]}"
}

bench_wait_ready() {  # URL [LOG]
  local url="$1" log="${2:-$WORK/control-plane.log}"
  echo "  waiting for the control plane at $url"
  if ! python3 "$BENCH_LIB/readbench.py" wait "$url" --timeout 120; then
    if [[ -f "$log" ]]; then echo "--- last lines of $(basename "$log"):" >&2; tail -30 "$log" >&2; fi
    exit 1
  fi
}

bench_start_worker() {  # CLUSTER INSTANCE_ID [VAR=VALUE...]: state in $WORK/worker-state
  local cluster="$1" instance="$2"; shift 2
  mkdir -p "$WORK/worker-state"
  bench_start worker "$WORKER_DIR" -- env Worker__Cluster="$cluster" Worker__InstanceId="$instance" \
    Worker__StateDirectory="$WORK/worker-state" "$@" dotnet "$WORKER_DLL"
  WORKER_PID="${PIDS[-1]}"
}
