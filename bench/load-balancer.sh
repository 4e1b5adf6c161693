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

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
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

bench_require python3 azurite dotnet docker wrk
python3 -c 'import boto3' 2>/dev/null || { echo "missing: python3 boto3 (bash scripts/install-deps.sh)" >&2; exit 1; }
bench_require_docker

bench_workdir ecs-lb-bench
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-lb-$RUN_ID"
INSTANCE_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
# Last started first, each given 5 s, so Azurite goes last and the others stop cleanly against it.
BENCH_STOP_IN_REVERSE=1
BENCH_CONTAINER_FILTERS=("label=com.amazonaws.ecs.cluster=$CLUSTER")
read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT L1 L2 L3 L4 < <(bench_free_ports 7)

echo "== setup (work directory $WORK, cluster $CLUSTER)"
if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj \
    src/LoadBalancer/Serverless.LoadBalancer.csproj
fi
bench_require_files "$CP_DLL" "$WORKER_DLL" "$LB_DLL"

bench_start_azurite
bench_storage_env
OURS_URL="http://127.0.0.1:$OURS_PORT"

bench_start_control_plane "$OURS_URL"
cd "$BENCH/lib"
bench_wait_ready "$OURS_URL"
python3 -c "
import boto3, sys
from signing import ACCESS_KEY, SECRET_KEY, REGION
boto3.client('ecs', endpoint_url='$OURS_URL', region_name=REGION, aws_access_key_id=ACCESS_KEY,
             aws_secret_access_key=SECRET_KEY).create_cluster(clusterName='$CLUSTER')"

# The worker and the data plane with their defaults (the data plane learns of changes by its wake).
bench_start_worker "$CLUSTER" "$INSTANCE_ID"
bench_start load-balancer "$LB_DIR" -- dotnet "$LB_DLL"
LB_PID="${PIDS[-1]}"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine, wrk and the driver share these cores"
python3 lbbench.py run --url "$OURS_URL" --cluster "$CLUSTER" --ports "$L1" "$L2" "$L3" "$L4" \
  --lb-pid "$LB_PID" --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
  --out "$BENCH/results/load-balancer.md" --json "$BENCH/results/load-balancer.json" "${RUN_ARGS[@]}"
echo "written: bench/results/load-balancer.md (raw numbers: load-balancer.json)"
