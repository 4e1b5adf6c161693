#!/usr/bin/env bash
# Runs the control plane locally: dependencies, a Release build, Azurite, the Functions app in
# standalone mode and a worker, then prints how to talk to it.
#
#   bash scripts/run.sh             foreground: follows the control plane's log; Ctrl-C stops
#                                   everything this script started
#   bash scripts/run.sh --detach    starts everything in the background and returns; logs and pids
#                                   stay under the state directory
#   bash scripts/run.sh --stop      stops what a --detach run started
#   --fresh (with any of the above) first removes the local state: Azurite's data, the worker's
#                                   identity and the task containers that worker started
#
# Either start first stops a previous --detach run, so running it twice is safe.
#
# State survives a restart: Azurite keeps its data in the state directory, and the worker keeps its
# container instance id there. Stopping leaves the task containers running, as stopping the ECS agent
# does; the next start adopts those whose task still exists and removes those whose task does not
# (or is to stop), so no container is left without a task. On a restart the worker starts before the
# control plane, so its instance is not taken for lost however long it was down.
#
# Environment:
#   ECS_PORT=7071             where the API listens (a free port is picked if it is taken)
#   ECS_STORAGE_CONNECTION    use this storage account instead of starting Azurite (--fresh then
#                             refuses: it clears only the local Azurite)
#   ECS_AZURITE_PORTS         Azurite's blob, queue and table ports (default "10000 10001 10002";
#                             "0 0 0" picks free ones; taken defaults also mean free ones)
#   ECS_SKIP_DOCKER=1         no Docker engine and no worker: the API and storage only
#   ECS_SKIP_BUILD=1          run the existing Release build output (the tests do; they built it)
#   ECS_POOL=NAME[:PROVIDER[:MIN:MAX]]  also start a pool agent (an Auto Scaling group stand-in) for the
#                             pool NAME (a capacity provider's autoScalingGroupArn ends in
#                             autoScalingGroupName/NAME): 0..4 workers of capacity provider PROVIDER
#                             (default NAME) in cluster default, sized by managed scaling
#   ECS_STATE_DIR             Azurite's data, the worker's identity, logs and pids
#                             (default ${XDG_STATE_HOME:-$HOME/.local/state}/ecs-serverless)
#
# Settings: src/Functions/local.settings.json (created from local.settings.sample.json when missing;
# git-ignored, so edit it freely). The storage connection is passed as the AzureWebJobsStorage
# environment variable, which the app reads above local.settings.json, so the file keeps
# UseDevelopmentStorage=true even when Azurite had to move off its default ports. Other settings
# in the environment (Ecs__*, Worker__*) override the file too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${ECS_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/ecs-serverless}"
RUN_DIR="$STATE_DIR/run"
PIDS="$RUN_DIR/pids"
AZURITE_DIR="$STATE_DIR/azurite"
WORKER_DIR="$STATE_DIR/worker"
CONFIGURATION=Release
FUNCTIONS_PROJECT="$ROOT/src/Functions/Serverless.Functions.csproj"
FUNCTIONS_OUT="$ROOT/src/Functions/bin/$CONFIGURATION/net10.0"
SETTINGS="$ROOT/src/Functions/local.settings.json"
SAMPLE_SETTINGS="$ROOT/local.settings.sample.json"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

mode=foreground
fresh=0
for arg in "$@"; do
    case "$arg" in
        --detach) mode=detach ;;
        --stop) mode=stop ;;
        --fresh) fresh=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--detach | --stop] [--fresh]" >&2; exit 2 ;;
    esac
done

log() { printf 'run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$RUN_DIR"

# ---- stopping ------------------------------------------------------------------------------

# Stops the processes named in a pid file ("name pid" lines), politely, then not, one at a time
# in the reverse order of their start: the worker's and the control plane's last writes reach
# Azurite, and Azurite then saves its data before it exits.
stop_pids() {
    local file="$1" name pid
    [ -f "$file" ] || return 0
    while read -r name pid; do
        kill -0 "$pid" 2>/dev/null || continue
        log "stopping $name ($pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done < <(tac "$file")
    rm -f "$file"
}

# The worker's container instance id, empty when it has none yet.
worker_instance_id() { cat "$WORKER_DIR/instance-id" 2>/dev/null | tr -d '[:space:]' || true; }

# --fresh: the task containers (and task volumes) of the worker's instance, then the state they
# belonged to. Containers go first: once the instance id is gone, nothing would find them again.
remove_local_state() {
    local id
    id="$(worker_instance_id)"
    if [ -n "$id" ] && command -v docker >/dev/null 2>&1; then
        local containers volumes
        containers="$(docker ps -aq --filter "label=ecs-worker.instance-id=$id")"
        if [ -n "$containers" ]; then
            log "removing $(wc -l <<<"$containers") task container(s) of container instance $id"
            docker rm -f $containers >/dev/null
        fi
        volumes="$(docker volume ls -q --filter "label=ecs-worker.instance-id=$id")"
        [ -z "$volumes" ] || docker volume rm -f $volumes >/dev/null
    fi
    log "removing the local state in $AZURITE_DIR and $WORKER_DIR"
    rm -rf "$AZURITE_DIR" "$WORKER_DIR"
}

stop_pids "$PIDS"
if [ "$fresh" -eq 1 ] && [ -n "${ECS_STORAGE_CONNECTION:-}" ]; then
    die "--fresh clears the local Azurite only; with ECS_STORAGE_CONNECTION, clear that account yourself"
fi
if [ "$mode" = stop ]; then
    [ "$fresh" -eq 1 ] && remove_local_state
    log "stopped"
    exit 0
fi

# ---- helpers -------------------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The value of a Values entry in local.settings.json, empty when absent.
setting() {
    python3 - "$SETTINGS" "$1" <<'PY'
import json, sys
try:
    print(json.load(open(sys.argv[1])).get("Values", {}).get(sys.argv[2], ""))
except (OSError, ValueError):
    print("")
PY
}

started_pid_file="$RUN_DIR/pids.starting"
: >"$started_pid_file"

# Starts a background process whose output goes to $RUN_DIR/<name>.log and records its pid.
# Detached processes get their own session so they outlive this shell and its terminal.
start_process() {
    local name="$1" dir="$2"
    shift 2
    : >"$RUN_DIR/$name.log"
    if [ "$mode" = detach ]; then
        (cd "$dir" && exec setsid "$@" >>"$RUN_DIR/$name.log" 2>&1 </dev/null) &
    else
        (cd "$dir" && exec "$@" >>"$RUN_DIR/$name.log" 2>&1 </dev/null) &
    fi
    last_pid=$!
    echo "$name $last_pid" >>"$started_pid_file"
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ "$mode" = foreground ] || [ "$status" -ne 0 ]; then
        [ -n "${tail_pid:-}" ] && kill "$tail_pid" 2>/dev/null
        stop_pids "$started_pid_file"
    else
        mv "$started_pid_file" "$PIDS"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- dependencies and build ----------------------------------------------------------------

bash "$ROOT/scripts/install-deps.sh"
[ "$fresh" -eq 1 ] && remove_local_state

# Only what this script runs, so that a test project in the middle of a change cannot stop the
# product from starting; scripts/test.sh builds the whole solution.
worker_project="$(find "$ROOT/src/Worker" -maxdepth 1 -name '*.csproj' 2>/dev/null | head -n 1 || true)"
run_worker=0
if [ -n "$worker_project" ] && [ "${ECS_SKIP_DOCKER:-0}" != "1" ]; then
    run_worker=1
fi
if [ "${ECS_SKIP_BUILD:-0}" != "1" ]; then
    log "building ($CONFIGURATION)"
    dotnet build "$FUNCTIONS_PROJECT" -c "$CONFIGURATION" -v quiet -nologo </dev/null
    if [ "$run_worker" -eq 1 ]; then
        dotnet build "$worker_project" -c "$CONFIGURATION" -v quiet -nologo </dev/null
    fi
    dotnet build "$ROOT/src/LoadBalancer/Serverless.LoadBalancer.csproj" -c "$CONFIGURATION" -v quiet -nologo </dev/null
fi

# ---- storage -------------------------------------------------------------------------------

if [ -n "${ECS_STORAGE_CONNECTION:-}" ]; then
    storage="$ECS_STORAGE_CONNECTION"
    log "using the storage account in ECS_STORAGE_CONNECTION"
else
    command -v azurite >/dev/null 2>&1 || die "azurite is not on PATH; run scripts/install-deps.sh"
    read -r -a azurite_ports <<<"${ECS_AZURITE_PORTS:-10000 10001 10002}"
    [ "${#azurite_ports[@]}" -eq 3 ] || die "ECS_AZURITE_PORTS needs three ports: blob, queue, table"
    for port in "${azurite_ports[@]}"; do
        if [ "$port" != 0 ] && port_in_use "$port"; then
            log "port $port is taken; Azurite gets free ports instead"
            azurite_ports=(0 0 0)
            break
        fi
    done
    # On disk, so clusters, task definitions, services and tasks outlive a stop (--fresh clears it).
    mkdir -p "$AZURITE_DIR"
    start_process azurite "$RUN_DIR" azurite --location "$AZURITE_DIR" --skipApiVersionCheck --loose --silent \
        --disableTelemetry --blobPort "${azurite_ports[0]}" --queuePort "${azurite_ports[1]}" --tablePort "${azurite_ports[2]}"
    azurite_pid=$last_pid
    for _ in $(seq 1 300); do
        [ "$(grep -c 'successfully listening' "$RUN_DIR/azurite.log" || true)" -ge 3 ] && break
        kill -0 "$azurite_pid" 2>/dev/null || { cat "$RUN_DIR/azurite.log" >&2; die "Azurite exited"; }
        sleep 0.1
    done
    endpoint_of() {
        grep -o "Azurite $1 service is successfully listening at http://[^ ]*" "$RUN_DIR/azurite.log" | sed 's/.* at //; s:/*$::'
    }
    blob="$(endpoint_of Blob)" queue="$(endpoint_of Queue)" table="$(endpoint_of Table)"
    [ -n "$blob" ] && [ -n "$queue" ] && [ -n "$table" ] || { cat "$RUN_DIR/azurite.log" >&2; die "Azurite did not start listening"; }
    if [ "${azurite_ports[*]}" = "10000 10001 10002" ]; then
        storage="UseDevelopmentStorage=true"
    else
        key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
        storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$blob/devstoreaccount1;QueueEndpoint=$queue/devstoreaccount1;TableEndpoint=$table/devstoreaccount1;"
    fi
    log "Azurite is up: tables $table, queues $queue, data in $AZURITE_DIR"
fi

# ---- settings ------------------------------------------------------------------------------

if [ ! -f "$SETTINGS" ]; then
    log "creating src/Functions/local.settings.json from local.settings.sample.json"
    cp "$SAMPLE_SETTINGS" "$SETTINGS"
fi
# The standalone host reads local.settings.json from its base directory, the build output; the
# build copies it there, but only if it existed when the build ran. Only when it differs: a
# control plane starting from the same output (a test) must not read it half-written.
cmp -s "$SETTINGS" "$FUNCTIONS_OUT/local.settings.json" || cp "$SETTINGS" "$FUNCTIONS_OUT/local.settings.json"

access_keys="${Ecs__AccessKeys:-$(setting Ecs__AccessKeys)}"
first_pair="${access_keys%%;*}"
access_key_id="${first_pair%%:*}"
secret_access_key="${first_pair#*:}"
region="${Ecs__Region:-$(setting Ecs__Region)}"
region="${region:-us-east-1}"
# The deploy webhook's first secret (several, separated by ';', during a rotation).
deploy_secret="${Deploy__WebhookSecrets:-$(setting Deploy__WebhookSecrets)}"
deploy_secret="${deploy_secret%%;*}"
[ -n "$access_key_id" ] && [ "$first_pair" != "$access_key_id" ] ||
    die "no access key in Ecs__AccessKeys (local.settings.json); expected ACCESS_KEY_ID:SECRET"

# ---- worker and control plane --------------------------------------------------------------

export AzureWebJobsStorage="$storage"

# The key-encryption key of secret values (Secrets Manager, SecureString parameters): generated on
# the first start into the state directory, never into git. Only the control plane gets it, through
# its environment (not its command line, which any user can list); the worker never does.
kek_file="$STATE_DIR/key-encryption-key"
kek="${Secrets__KeyEncryptionKeys:-}"
unset Secrets__KeyEncryptionKeys
if [ -z "$kek" ]; then
    if [ ! -s "$kek_file" ]; then
        (umask 077 && printf 'local-%s:%s\n' "$(date +%Y%m%d)" "$(head -c 32 /dev/urandom | base64)" >"$kek_file")
        log "generated the key-encryption key for secret values ($kek_file)"
    fi
    kek="$(cat "$kek_file")"
fi

worker_started=0
# The worker needs storage, not the API: it registers its instance and adopts its containers itself.
# Returns once it is ready (registered, the containers from before this start adopted) or after 60 s.
start_worker() {
    local worker_name worker_out worker_pid ready=0
    worker_name="$(basename "$worker_project" .csproj)"
    worker_out="$(dirname "$worker_project")/bin/$CONFIGURATION/net10.0"
    if [ ! -f "$worker_out/$worker_name.dll" ]; then
        log "warning: $worker_out/$worker_name.dll not found; no worker started"
        return 0
    fi
    # Its identity lives in the state directory, so --fresh forgets it with the data it belongs to.
    start_process worker "$worker_out" env Worker__Cluster=default Worker__StateDirectory="$WORKER_DIR" dotnet "$worker_name.dll"
    worker_pid=$last_pid
    worker_started=1
    log "worker started for cluster default (log: $RUN_DIR/worker.log); waiting until it is ready"
    for _ in $(seq 1 600); do
        kill -0 "$worker_pid" 2>/dev/null || { tail -n 40 "$RUN_DIR/worker.log" >&2; die "the worker exited"; }
        grep -Eq 'Worker arn:[^ ]+ ready' "$RUN_DIR/worker.log" && { ready=1; break; }
        sleep 0.1
    done
    [ "$ready" -eq 1 ] || log "warning: the worker is not ready after 60 s (log: $RUN_DIR/worker.log)"
}

# A restart: the worker goes first and the control plane waits until it is ready, so the control
# plane's health sweep sees a fresh heartbeat and does not take the instance's tasks for lost
# because the whole system was down for a while.
if [ "$run_worker" -eq 1 ] && [ -n "$(worker_instance_id)" ]; then
    start_worker
fi

port="${ECS_PORT:-7071}"
if port_in_use "$port"; then
    new_port="$(free_port)"
    log "port $port is taken; the API listens on $new_port instead"
    port="$new_port"
fi
endpoint="http://127.0.0.1:$port"

Secrets__KeyEncryptionKeys="$kek" start_process control-plane "$FUNCTIONS_OUT" env ASPNETCORE_URLS="$endpoint" dotnet Serverless.Functions.dll
control_plane_pid=$last_pid

log "waiting for the API at $endpoint"
up=0
for _ in $(seq 1 600); do
    kill -0 "$control_plane_pid" 2>/dev/null || { tail -n 40 "$RUN_DIR/control-plane.log" >&2; die "the control plane exited"; }
    # An unsigned request is refused with an AWS-shaped 4xx: that means it is serving.
    code="$(curl -s -o /dev/null -w '%{http_code}' -m 2 -X POST -H 'Content-Type: application/x-amz-json-1.1' \
        -d '{}' "$endpoint/" 2>/dev/null || true)"
    if [ "${code:0:1}" = 4 ]; then up=1; break; fi
    sleep 0.1
done
[ "$up" -eq 1 ] || { tail -n 40 "$RUN_DIR/control-plane.log" >&2; die "the API did not answer at $endpoint within 60 s"; }

if [ "$run_worker" -eq 1 ]; then
    # The worker joins the "default" cluster; like the ECS agent without ECS_CLUSTER, make sure it
    # exists (on a restart it does, and CreateCluster answers with it).
    AWS_ACCESS_KEY_ID="$access_key_id" AWS_SECRET_ACCESS_KEY="$secret_access_key" AWS_DEFAULT_REGION="$region" \
        aws ecs create-cluster --cluster-name default --endpoint-url "$endpoint" >/dev/null ||
        die "could not create the default cluster"
    [ "$worker_started" -eq 1 ] || start_worker
    if [ -n "${ECS_POOL:-}" ]; then
        IFS=: read -r pool_name pool_provider pool_min pool_max <<<"$ECS_POOL"
        start_process pool-agent "$(dirname "$worker_project")/bin/$CONFIGURATION/net10.0" env Worker__Cluster=default \
            Pool__Name="$pool_name" Worker__CapacityProvider="${pool_provider:-$pool_name}" Pool__MinSize="${pool_min:-0}" \
            Pool__MaxSize="${pool_max:-4}" Pool__StateDirectory="$STATE_DIR/pool" dotnet "$(basename "$worker_project" .csproj).dll"
        log "pool agent started for pool $pool_name (log: $RUN_DIR/pool-agent.log)"
    fi
fi

# The ELBv2 data plane: serves the listeners created with `aws elbv2 create-listener` on loopback.
# It reads the same storage and the same settings (Ecs__StoragePrefix, LoadBalancer__*) as the control plane.
lb_settings=()
for name in Ecs__StoragePrefix Ecs__Region Ecs__AccountId LoadBalancer__ListenAddress LoadBalancer__InstanceAddress \
    LoadBalancer__RefreshMilliseconds LoadBalancer__IdleTimeoutSeconds LoadBalancer__WakePort LoadBalancer__WakeAddress; do
    value="${!name:-$(setting "$name")}"
    [ -n "$value" ] && lb_settings+=("$name=$value")
done
lb_out="$ROOT/src/LoadBalancer/bin/$CONFIGURATION/net10.0"
if [ -f "$lb_out/Serverless.LoadBalancer.dll" ]; then
    start_process load-balancer "$lb_out" env "${lb_settings[@]}" dotnet Serverless.LoadBalancer.dll
else
    log "warning: $lb_out/Serverless.LoadBalancer.dll not found; no load balancer started"
fi

# ---- how to use it -------------------------------------------------------------------------

cat <<EOF

The ECS control plane is running at $endpoint
Logs: $(cut -d' ' -f1 "$started_pid_file" | sed "s:.*:$RUN_DIR/&.log:" | paste -sd' ')

Talk to it with the AWS CLI:

  export AWS_ACCESS_KEY_ID=$access_key_id AWS_SECRET_ACCESS_KEY=$secret_access_key AWS_DEFAULT_REGION=$region
  aws ecs list-clusters --endpoint-url $endpoint
  aws ecs list-container-instances --endpoint-url $endpoint

Or open the web console at $endpoint/console and sign in with that key pair.

Deploy from CI: POST $endpoint/deploy, signed (X-Hub-Signature-256) with the webhook secret
  ${deploy_secret:-(none: set Deploy__WebhookSecrets in src/Functions/local.settings.json; until then every delivery is refused)}

EOF

if [ "$mode" = detach ]; then
    echo "Stop it with: bash scripts/run.sh --stop"
    exit 0
fi

echo "Press Ctrl-C to stop. The control plane's log follows."
echo
tail -n +1 -f "$RUN_DIR/control-plane.log" &
tail_pid=$!
set +e
wait "$control_plane_pid"
status=$?
set -e
log "the control plane exited with status $status"
exit "$status"
