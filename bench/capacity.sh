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

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
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

bench_require python3 azurite dotnet docker
bench_require_docker

bench_workdir ecs-capacity-bench
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-capacity-$RUN_ID"
STATIC_CLUSTER="bench-static-$RUN_ID"
PROVIDER="bench-cp-$RUN_ID"
POOL="bench-pool-$RUN_ID"
POOL_DIR="$WORK/pool"
STATIC_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
# Containers and task networks of this run only. The static worker's own containers too (a spare
# pause container carries its instance id, no cluster), should it have been killed before its
# shutdown removed them. (The pool agent's workers are in its process group; the agent also stops
# them on SIGTERM.)
BENCH_CONTAINER_FILTERS=("label=com.amazonaws.ecs.cluster=$CLUSTER" "label=com.amazonaws.ecs.cluster=$STATIC_CLUSTER"
  "label=ecs-worker.instance-id=$STATIC_ID")
BENCH_NETWORK_FILTERS=("label=ecs-worker.instance-id=$STATIC_ID")
read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT < <(bench_free_ports 3)

echo "== setup (work directory $WORK, clusters $CLUSTER and $STATIC_CLUSTER)"
if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj
fi
bench_require_files "$CP_DLL" "$WORKER_DLL"

bench_start_azurite
bench_storage_env
# Single-line timestamped logs from every process: the driver reads its marks from them.
export "${BENCH_SINGLE_LINE_LOGS[@]}"
OURS_URL="http://127.0.0.1:$OURS_PORT"

bench_start_control_plane "$OURS_URL" \
  Capacity__ScalingSeconds="$SCALING_SECONDS" Capacity__ScaleInAfterSeconds="$SCALE_IN_SECONDS"
cd "$BENCH/lib"
bench_wait_ready "$OURS_URL"
python3 capacitybench.py setup --url "$OURS_URL" --cluster "$CLUSTER" --static-cluster "$STATIC_CLUSTER" \
  --provider "$PROVIDER" --pool "$POOL"

mkdir -p "$POOL_DIR"
bench_start_worker "$STATIC_CLUSTER" "$STATIC_ID"
# The pool agent as run.sh starts it for ECS_POOL=<pool>:<provider>:0:2, with the workers' size
# given so managed scaling knows it before one registers. Its workers inherit these settings; the
# metadata endpoint is off for them, as in the end-to-end test (the static worker has its own).
bench_start pool-agent "$WORKER_DIR" -- env Worker__Cluster="$CLUSTER" Pool__Name="$POOL" Worker__CapacityProvider="$PROVIDER" \
  Pool__MinSize=0 Pool__MaxSize=2 Pool__PollSeconds="$POOL_POLL_SECONDS" Pool__StateDirectory="$POOL_DIR" \
  Worker__Cpu=1024 Worker__MemoryMiB=256 Worker__MetadataPort=-1 \
  dotnet "$WORKER_DLL"
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
