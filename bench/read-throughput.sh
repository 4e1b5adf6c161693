#!/usr/bin/env bash
# Read-path benchmark: our ECS control plane vs moto_server, side by side in one run.
#
#   bash bench/read-throughput.sh [--no-build] [--ours-url URL] [--moto-url URL] [--quick]
#
# Builds the control plane (Release), starts a fresh in-memory Azurite, our control plane
# standalone and moto_server on free ports, seeds both identically with boto3, then for
# DescribeClusters, ListClusters, DescribeTaskDefinition and ListTaskDefinitions measures
# throughput with wrk (pre-signed SigV4 requests) and p50/p99 latency at a constant 100 req/s.
# Prints a Markdown table and writes it to bench/results/read-throughput.md.
#
#   --no-build       use the existing Release build (src/Functions/bin/Release/net10.0)
#   --ours-url URL   measure an already running control plane instead of starting one
#   --moto-url URL   measure an already running moto_server instead of starting one
#   --quick          short runs (2 s wrk, 5 s latency) to check the script itself
#   --keep-logs      keep the work directory (server logs, request files) after the run
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
BUILD=1 OURS_URL="" MOTO_URL="" KEEP_LOGS=0
RUN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --ours-url) OURS_URL="${2:?--ours-url needs a URL}"; shift ;;
    --moto-url) MOTO_URL="${2:?--moto-url needs a URL}"; shift ;;
    --quick) RUN_ARGS+=(--duration 2 --warmup 1 --latency-duration 5) ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

for tool in wrk python3 moto_server azurite dotnet; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ecs-read-bench.XXXXXX")"
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Each server runs in its own session (setsid), so its process group holds exactly what we
  # started: azurite's node, dotnet, moto's python and any children they spawned.
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 || $KEEP_LOGS -eq 1 ]]; then
    echo "logs and request files kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

# Distinct free ports, taken while all are held so two calls cannot return the same one.
read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT MOTO_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

start() {  # start NAME command... : runs in its own session, logs to $WORK/NAME.log
  local name="$1"; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  local command="$*"
  echo "  started $name (pid $!): ${command%%$'\n'*}"
}

echo "== setup (work directory $WORK)"
AZURITE_PID=""
if [[ -z "$OURS_URL" ]]; then
  if [[ $BUILD -eq 1 ]]; then
    # Only what is measured (Functions and the Core it references): a test project that does
    # not compile at the moment must not stop a benchmark of the server.
    echo "  dotnet build -c Release src/Functions"
    dotnet build -c Release "$REPO/src/Functions/Serverless.Functions.csproj" -nologo -v quiet \
      >"$WORK/build.log" 2>&1 \
      || { tail -40 "$WORK/build.log" >&2; echo "build failed (log: $WORK/build.log)" >&2; exit 1; }
  fi
  DLL="$REPO/src/Functions/bin/Release/net10.0/Serverless.Functions.dll"
  [[ -f "$DLL" ]] || { echo "missing $DLL (run without --no-build)" >&2; exit 1; }

  cd "$WORK"   # azurite writes its debug and extent files to the working directory
  start azurite azurite --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
    --blobPort 0 --queuePort "$AZ_QUEUE_PORT" --tablePort "$AZ_TABLE_PORT"
  AZURITE_PID="${PIDS[-1]}"
  python3 "$BENCH/lib/readbench.py" wait-port --pid "$AZURITE_PID" "$AZ_QUEUE_PORT" "$AZ_TABLE_PORT" \
    || { tail -20 "$WORK/azurite.log" >&2; exit 1; }

  AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  OURS_URL="http://127.0.0.1:$OURS_PORT"
  (
    cd "$REPO/src/Functions/bin/Release/net10.0"
    export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_KEY;QueueEndpoint=http://127.0.0.1:$AZ_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://127.0.0.1:$AZ_TABLE_PORT/devstoreaccount1;"
    export Ecs__AccessKeys="AKIALOCALDEVELOPMENT:local-development-secret-key-not-for-production"
    export Ecs__Region=us-east-1 Ecs__AccountId=000000000000
    # The seeded tasks sit on a container instance no worker serves: keep the health sweep from
    # retiring it (and stopping its tasks) in the middle of the run.
    export Ecs__AgentLostAfterSeconds=86400
    export ASPNETCORE_URLS="$OURS_URL" Standalone__Urls="$OURS_URL"
    export Logging__LogLevel__Default=Warning Logging__LogLevel__Microsoft=Warning
    export DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production
    start ours dotnet "$DLL" --urls "$OURS_URL"
    echo "${PIDS[-1]}" >"$WORK/ours.pid"
  )
  PIDS+=("$(cat "$WORK/ours.pid")")
else
  echo "  ours: using the running server at $OURS_URL"
fi

if [[ -z "$MOTO_URL" ]]; then
  MOTO_URL="http://127.0.0.1:$MOTO_PORT"
  # moto_server's own entry point with Werkzeug's per-request access log muted: ours logs
  # at Warning, so neither server pays for a log line per request.
  start moto python3 -c 'import logging, sys
logging.getLogger("werkzeug").setLevel(logging.WARNING)
from moto.server import main
main(sys.argv[1:])' -H 127.0.0.1 -p "$MOTO_PORT"
else
  echo "  moto: using the running server at $MOTO_URL"
fi

cd "$BENCH/lib"
for server in "ours $OURS_URL" "moto $MOTO_URL"; do
  set -- $server
  echo "  waiting for $1 at $2"
  if ! python3 readbench.py wait "$2" --timeout 120; then
    [[ -f "$WORK/$1.log" ]] && { echo "--- last lines of $1.log:" >&2; tail -30 "$WORK/$1.log" >&2; }
    exit 1
  fi
done

echo "== seeding both servers through boto3"
python3 readbench.py seed "$OURS_URL" & SEED_OURS=$!
python3 readbench.py seed "$MOTO_URL" & SEED_MOTO=$!
wait "$SEED_OURS" && wait "$SEED_MOTO" || { echo "seeding failed" >&2; exit 1; }

echo "== measuring (nproc $(nproc)); wrk and the servers share these cores"
python3 readbench.py run --ours "$OURS_URL" --moto "$MOTO_URL" \
  --ours-backing-pids "$AZURITE_PID" --workdir "$WORK" \
  --out "$BENCH/results/read-throughput.md" --json "$BENCH/results/read-throughput.json" "${RUN_ARGS[@]}"
echo "written: bench/results/read-throughput.md (raw numbers: read-throughput.json)"
