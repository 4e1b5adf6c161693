#!/usr/bin/env bash
# Runs the control plane locally: dependencies, a Release build, an in-memory Azurite, the Functions
# app in standalone mode (and the worker, once src/Worker exists), then prints how to talk to it.
#
#   bash scripts/run.sh             foreground: follows the control plane's log; Ctrl-C stops
#                                   everything this script started
#   bash scripts/run.sh --detach    starts everything in the background and returns; logs and pids
#                                   stay under the state directory
#   bash scripts/run.sh --stop      stops what a --detach run started
#
# Either start first stops a previous --detach run, so running it twice is safe.
#
# Environment:
#   ECS_PORT=7071             where the API listens (a free port is picked if it is taken)
#   ECS_STORAGE_CONNECTION    use this storage account instead of starting Azurite
#   ECS_SKIP_DOCKER=1         no Docker engine and no worker: the API and storage only
#   ECS_STATE_DIR             logs and pids (default ${XDG_STATE_HOME:-$HOME/.local/state}/ecs-serverless)
#
# Settings: src/Functions/local.settings.json (created from local.settings.sample.json when missing;
# git-ignored, so edit it freely). The storage connection is passed as the AzureWebJobsStorage
# environment variable, which the app reads above local.settings.json, so the file keeps
# UseDevelopmentStorage=true even when Azurite had to move off its default ports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${ECS_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/ecs-serverless}"
RUN_DIR="$STATE_DIR/run"
PIDS="$RUN_DIR/pids"
CONFIGURATION=Release
FUNCTIONS_PROJECT="$ROOT/src/Functions/Serverless.Functions.csproj"
FUNCTIONS_OUT="$ROOT/src/Functions/bin/$CONFIGURATION/net10.0"
SETTINGS="$ROOT/src/Functions/local.settings.json"
SAMPLE_SETTINGS="$ROOT/local.settings.sample.json"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

mode=foreground
case "${1:-}" in
    "") ;;
    --detach) mode=detach ;;
    --stop) mode=stop ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--detach | --stop]" >&2; exit 2 ;;
esac

log() { printf 'run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$RUN_DIR"

# ---- stopping ------------------------------------------------------------------------------

# Stops the processes named in a pid file ("name pid" lines), politely, then not.
stop_pids() {
    local file="$1" name pid
    [ -f "$file" ] || return 0
    while read -r name pid; do
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping $name ($pid)"
            kill "$pid" 2>/dev/null || true
        fi
    done <"$file"
    for _ in $(seq 1 50); do
        local alive=0
        while read -r name pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$file"
        [ "$alive" -eq 0 ] && break
        sleep 0.2
    done
    while read -r name pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$file"
    rm -f "$file"
}

stop_pids "$PIDS"
[ "$mode" = stop ] && { log "stopped"; exit 0; }

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

# Only what this script runs, so that a test project in the middle of a change cannot stop the
# product from starting; scripts/test.sh builds the whole solution.
worker_project="$(find "$ROOT/src/Worker" -maxdepth 1 -name '*.csproj' 2>/dev/null | head -n 1 || true)"
run_worker=0
if [ -n "$worker_project" ] && [ "${ECS_SKIP_DOCKER:-0}" != "1" ]; then
    run_worker=1
fi
log "building ($CONFIGURATION)"
dotnet build "$FUNCTIONS_PROJECT" -c "$CONFIGURATION" -v quiet -nologo </dev/null
if [ "$run_worker" -eq 1 ]; then
    dotnet build "$worker_project" -c "$CONFIGURATION" -v quiet -nologo </dev/null
fi

# ---- storage -------------------------------------------------------------------------------

if [ -n "${ECS_STORAGE_CONNECTION:-}" ]; then
    storage="$ECS_STORAGE_CONNECTION"
    log "using the storage account in ECS_STORAGE_CONNECTION"
else
    command -v azurite >/dev/null 2>&1 || die "azurite is not on PATH; run scripts/install-deps.sh"
    azurite_ports=(10000 10001 10002)
    for port in "${azurite_ports[@]}"; do
        if port_in_use "$port"; then
            log "port $port is taken; Azurite gets free ports instead"
            azurite_ports=(0 0 0)
            break
        fi
    done
    start_process azurite "$RUN_DIR" azurite --inMemoryPersistence --skipApiVersionCheck --loose --silent \
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
    if [ "${azurite_ports[0]}" = 10000 ]; then
        storage="UseDevelopmentStorage=true"
    else
        key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
        storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$blob/devstoreaccount1;QueueEndpoint=$queue/devstoreaccount1;TableEndpoint=$table/devstoreaccount1;"
    fi
    log "Azurite is up: tables $table, queues $queue"
fi

# ---- settings ------------------------------------------------------------------------------

if [ ! -f "$SETTINGS" ]; then
    log "creating src/Functions/local.settings.json from local.settings.sample.json"
    cp "$SAMPLE_SETTINGS" "$SETTINGS"
fi
# The standalone host reads local.settings.json from its base directory, the build output; the
# build copies it there, but only if it existed when the build ran.
cp "$SETTINGS" "$FUNCTIONS_OUT/local.settings.json"

access_keys="${Ecs__AccessKeys:-$(setting Ecs__AccessKeys)}"
first_pair="${access_keys%%;*}"
access_key_id="${first_pair%%:*}"
secret_access_key="${first_pair#*:}"
region="${Ecs__Region:-$(setting Ecs__Region)}"
region="${region:-us-east-1}"
[ -n "$access_key_id" ] && [ "$first_pair" != "$access_key_id" ] ||
    die "no access key in Ecs__AccessKeys (local.settings.json); expected ACCESS_KEY_ID:SECRET"

# ---- control plane -------------------------------------------------------------------------

port="${ECS_PORT:-7071}"
if port_in_use "$port"; then
    new_port="$(free_port)"
    log "port $port is taken; the API listens on $new_port instead"
    port="$new_port"
fi
endpoint="http://127.0.0.1:$port"

export AzureWebJobsStorage="$storage"
start_process control-plane "$FUNCTIONS_OUT" env ASPNETCORE_URLS="$endpoint" dotnet Serverless.Functions.dll
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

# ---- worker --------------------------------------------------------------------------------

if [ "$run_worker" -eq 1 ]; then
    # The worker joins the "default" cluster; like the ECS agent without ECS_CLUSTER, make sure it exists.
    AWS_ACCESS_KEY_ID="$access_key_id" AWS_SECRET_ACCESS_KEY="$secret_access_key" AWS_DEFAULT_REGION="$region" \
        aws ecs create-cluster --cluster-name default --endpoint-url "$endpoint" >/dev/null ||
        die "could not create the default cluster"
    worker_name="$(basename "$worker_project" .csproj)"
    worker_out="$(dirname "$worker_project")/bin/$CONFIGURATION/net10.0"
    if [ -f "$worker_out/$worker_name.dll" ]; then
        start_process worker "$worker_out" env Worker__Cluster=default dotnet "$worker_name.dll"
        log "worker started for cluster default (log: $RUN_DIR/worker.log)"
    else
        log "warning: $worker_out/$worker_name.dll not found; no worker started"
    fi
fi

# ---- how to use it -------------------------------------------------------------------------

cat <<EOF

The ECS control plane is running at $endpoint
Logs: $(cut -d' ' -f1 "$started_pid_file" | sed "s:.*:$RUN_DIR/&.log:" | paste -sd' ')

Talk to it with the AWS CLI:

  export AWS_ACCESS_KEY_ID=$access_key_id AWS_SECRET_ACCESS_KEY=$secret_access_key AWS_DEFAULT_REGION=$region
  aws ecs list-clusters --endpoint-url $endpoint
  aws ecs list-container-instances --endpoint-url $endpoint

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
