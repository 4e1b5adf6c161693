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

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
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

bench_require wrk python3 moto_server azurite dotnet

bench_workdir ecs-read-bench
# Each server runs in its own session (setsid), so its process group holds exactly what we
# started: azurite's node, dotnet, moto's python and any children they spawned.
BENCH_LOGS_NAME="logs and request files"
read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT MOTO_PORT < <(bench_free_ports 4)

echo "== setup (work directory $WORK)"
AZURITE_PID=""
if [[ -z "$OURS_URL" ]]; then
  if [[ $BUILD -eq 1 ]]; then
    # Only what is measured (Functions and the Core it references).
    bench_build src/Functions/Serverless.Functions.csproj
  fi
  bench_require_files "$CP_DLL"

  bench_start_azurite
  bench_storage_env
  OURS_URL="http://127.0.0.1:$OURS_PORT"
  # The seeded tasks sit on a container instance no worker serves: keep the health sweep from
  # retiring it, and the delivery sweep from stopping its never-acknowledged tasks after the
  # 5-minute start deadline, in the middle of a slow run.
  bench_start_control_plane "$OURS_URL" Ecs__AgentLostAfterSeconds=86400 Ecs__TaskStartDeadlineSeconds=86400 \
    Logging__LogLevel__Default=Warning Logging__LogLevel__Microsoft=Warning
else
  echo "  ours: using the running server at $OURS_URL"
fi

if [[ -z "$MOTO_URL" ]]; then
  MOTO_URL="http://127.0.0.1:$MOTO_PORT"
  # moto_server's own entry point with Werkzeug's per-request access log muted: ours logs
  # at Warning, so neither server pays for a log line per request.
  bench_start moto -- python3 -c 'import logging, sys
logging.getLogger("werkzeug").setLevel(logging.WARNING)
from moto.server import main
main(sys.argv[1:])' -H 127.0.0.1 -p "$MOTO_PORT"
else
  echo "  moto: using the running server at $MOTO_URL"
fi

cd "$BENCH/lib"
bench_wait_ready "$OURS_URL" "$WORK/control-plane.log"
echo "  waiting for moto at $MOTO_URL"
if ! python3 readbench.py wait "$MOTO_URL" --timeout 120; then
  [[ -f "$WORK/moto.log" ]] && { echo "--- last lines of moto.log:" >&2; tail -30 "$WORK/moto.log" >&2; }
  exit 1
fi

echo "== seeding both servers through boto3"
python3 readbench.py seed "$OURS_URL" & SEED_OURS=$!
python3 readbench.py seed "$MOTO_URL" & SEED_MOTO=$!
wait "$SEED_OURS" && wait "$SEED_MOTO" || { echo "seeding failed" >&2; exit 1; }

echo "== measuring (nproc $(nproc)); wrk and the servers share these cores"
python3 readbench.py run --ours "$OURS_URL" --moto "$MOTO_URL" \
  --ours-backing-pids "$AZURITE_PID" --workdir "$WORK" \
  --out "$BENCH/results/read-throughput.md" --json "$BENCH/results/read-throughput.json" "${RUN_ARGS[@]}"
echo "written: bench/results/read-throughput.md (raw numbers: read-throughput.json)"
