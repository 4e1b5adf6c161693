#!/usr/bin/env bash
# Deployments under steady load, and the load balancer data plane's overhead:
#
#   bash bench/deployments.sh [--no-build] [--runs N]
#
# Starts a private control plane, worker and data plane with scripts/run.sh (its own state directory,
# free ports: nothing shared is touched), then runs bench/lib/deployments.py against it:
#   1. wrk -t2 -c16 straight to one busybox httpd container and through a listener to it (ip target),
#      alternating, N runs each;
#   2. a service of 2 busybox httpd tasks behind a listener updated with a rolling update (100/200)
#      under 200 req/s through the listener: failed requests, time until COMPLETED and all answers new;
#   3. the same with strategy BLUE_GREEN (bake time 0, no hooks), until the service deployment is SUCCESSFUL.
# Writes bench/results/deployments.md (raw numbers: deployments.json). Stops everything it started on exit.
#
#   --no-build   use the existing Release build
#   --runs N     runs of each measurement (default 3)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS=3
BUILD=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --runs) RUNS="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for tool in python3 wrk docker dotnet; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
docker image inspect local/busybox:latest >/dev/null 2>&1 \
  || { echo "missing image local/busybox:latest (see ARCHITECTURE.md, 'Facts about the machines')" >&2; exit 1; }

STATE="$(mktemp -d "${TMPDIR:-/tmp}/bench-deployments.XXXXXX")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export ECS_STATE_DIR="$STATE" ECS_PORT="$PORT" ECS_AZURITE_PORTS="0 0 0"
# The task metadata endpoint plays no part here; off, so a Docker whose bridge lists no gateway does not stop the worker.
export Worker__MetadataPort="${Worker__MetadataPort:--1}"
[[ $BUILD -eq 0 ]] && export ECS_SKIP_BUILD=1

cleanup() {
  trap - EXIT INT TERM
  bash "$REPO/scripts/run.sh" --stop >/dev/null 2>&1 || true
  docker ps -aq --filter label=bench=deployments | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

bash "$REPO/scripts/run.sh" --detach --fresh
export AWS_ACCESS_KEY_ID=AKIALOCALDEVELOPMENT AWS_SECRET_ACCESS_KEY=local-development-secret-key-not-for-production AWS_DEFAULT_REGION=us-east-1
mkdir -p "$REPO/bench/results"
python3 "$REPO/bench/lib/deployments.py" --endpoint "http://127.0.0.1:$PORT" --runs "$RUNS" --out "$REPO/bench/results/deployments.md"
