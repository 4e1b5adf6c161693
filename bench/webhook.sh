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

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
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

bench_require python3 azurite dotnet docker
bench_require_docker

bench_workdir ecs-webhook-bench
RUN_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
CLUSTER="bench-webhook-$RUN_ID"
INSTANCE_ID="$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
TAGS=("local/busybox:bench-webhook-$RUN_ID-a" "local/busybox:bench-webhook-$RUN_ID-b")
# Containers of this run only (the engine is shared), then this run's two tags (the image stays).
BENCH_CONTAINER_FILTERS=("label=com.amazonaws.ecs.cluster=$CLUSTER")
remove_tags() { docker rmi "${TAGS[@]}" >/dev/null 2>&1 || true; }
BENCH_CLEANUP_HOOK=remove_tags
read -r AZ_QUEUE_PORT AZ_TABLE_PORT OURS_PORT < <(bench_free_ports 3)

echo "== setup (work directory $WORK, cluster $CLUSTER)"
if [[ $BUILD -eq 1 ]]; then
  bench_build src/Functions/Serverless.Functions.csproj src/Worker/Serverless.Worker.csproj
fi
bench_require_files "$CP_DLL" "$WORKER_DLL"
# Two tags of the local image: each sample flips its service between them (a real image change,
# nothing to pull).
for tag in "${TAGS[@]}"; do docker tag local/busybox:latest "$tag"; done

bench_start_azurite
bench_storage_env
# The development secret of local.settings.sample.json (webhookbench.py signs with it).
export Deploy__WebhookSecrets="local-development-webhook-secret-not-for-production"
OURS_URL="http://127.0.0.1:$OURS_PORT"

bench_start_control_plane "$OURS_URL"
cd "$BENCH/lib"
bench_wait_ready "$OURS_URL"
python3 webhookbench.py setup --url "$OURS_URL" --cluster "$CLUSTER" --run-id "$RUN_ID"

bench_start_worker "$CLUSTER" "$INSTANCE_ID"

cd "$BENCH/lib"
echo "== measuring (nproc $(nproc)); the processes, the engine and the driver share these cores"
python3 webhookbench.py run --url "$OURS_URL" --cluster "$CLUSTER" --run-id "$RUN_ID" \
  --cp-pid "$CP_PID" --worker-pid "$WORKER_PID" --azurite-pid "$AZURITE_PID" \
  --out "$BENCH/results/webhook.md" --json "$BENCH/results/webhook.json" "${RUN_ARGS[@]}"
echo "written: bench/results/webhook.md (raw numbers: webhook.json)"
