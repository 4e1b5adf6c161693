#!/usr/bin/env bash
# Installs what running and testing this repo needs, and only what is missing.
#
#   bash scripts/install-deps.sh
#
# Expects a Debian 12 machine with the .NET 10 SDK, node/npm and python3 (AWS CLI v1, boto3)
# already present, and runs as root (or with passwordless sudo). Idempotent and non-interactive:
# a second run changes nothing.
#
#   - Azurite (npm, global)                         storage emulator for Tables and Queues
#   - wrk, curl (Debian)                            HTTP load generator for the benchmarks; probes
#   - faketime (Debian)                             a worker with a skewed clock, in the fault tests
#   - chromium (Debian)                             headless browser for the web console's browser test
#   - docker.io, busybox-static (Debian)            container engine for the worker and its tests
#   - dockerd started in the background when /var/run/docker.sock does not answer
#   - local/busybox:latest imported from busybox-static (no registry here: images are made locally)
#
# Environment:
#   ECS_SKIP_DOCKER=1   storage-only: skip the engine, busybox-static and the test image
#   ECS_STATE_DIR       where logs go (default ${XDG_STATE_HOME:-$HOME/.local/state}/ecs-serverless)
set -euo pipefail

STATE_DIR="${ECS_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/ecs-serverless}"
SKIP_DOCKER="${ECS_SKIP_DOCKER:-0}"
BUSYBOX_IMAGE="local/busybox:latest"
# Bump when the image recipe below changes, so existing machines rebuild it.
BUSYBOX_RECIPE="1"

export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root for: $*"
    fi
}

mkdir -p "$STATE_DIR"

# run.sh and test.sh may both call this at once; one installer at a time (apt and dockerd
# would otherwise race).
# The lock is fd 9; anything started from here that outlives the script closes it (9>&-).
exec 9>"$STATE_DIR/install.lock"
flock -w 900 9 || die "another install-deps.sh has held $STATE_DIR/install.lock for 15 minutes"

for tool in dotnet npm python3; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed; this script expects it to be present"
done
command -v aws >/dev/null 2>&1 || log "warning: the AWS CLI ('aws') is missing; the end-to-end tests and the tour use it"

# ---- Debian packages -----------------------------------------------------------------------

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    as_root apt-get install -y -qq "$@" >/dev/null
}

deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# libfaketime: the fault tests run a worker whose wall clock is off.
deb_installed faketime || missing+=(faketime)
# The web console's browser test drives Debian's Chromium (no browser is downloaded).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "$SKIP_DOCKER" != "1" ]; then
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    # The package, not just any busybox: the image needs a statically linked binary.
    deb_installed busybox-static || missing+=(busybox-static)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# ---- Azurite -------------------------------------------------------------------------------

if ! command -v azurite >/dev/null 2>&1; then
    log "npm install -g azurite"
    as_root npm install -g --no-fund --no-audit azurite >/dev/null
    command -v azurite >/dev/null 2>&1 || die "azurite is still not on PATH after 'npm install -g azurite' (npm prefix: $(npm prefix -g))"
fi

if [ "$SKIP_DOCKER" = "1" ]; then
    log "ECS_SKIP_DOCKER=1: skipping the Docker engine and test images"
    log "ready (storage only)"
    exit 0
fi

# ---- Docker engine -------------------------------------------------------------------------

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

if ! docker_answers; then
    # A dockerd that runs but does not answer is wedged, not missing: a second one cannot start beside it.
    # (Debian bookworm's 20.10.24 can deadlock in libnetwork when many containers exit at once,
    # moby/moby#46661; every call then hangs until the daemon is restarted.)
    wedged="$(pgrep -x dockerd 2>/dev/null | xargs || true)"
    if [ -n "$wedged" ]; then
        die "dockerd (pid $wedged) runs but has not answered 'docker info' within 10 s: it is wedged; stop it and its containerd (sudo kill -9 $wedged; sudo pkill -9 -f /var/run/docker/containerd/containerd.toml) and run this again"
    fi
    log "starting dockerd (log: $STATE_DIR/dockerd.log)"
    # Its own session, so Ctrl-C in the shell that ran this script does not stop the engine.
    as_root setsid dockerd >>"$STATE_DIR/dockerd.log" 2>&1 </dev/null 9>&- &
    dockerd_pid=$!
    for _ in $(seq 1 60); do
        docker_answers && break
        kill -0 "$dockerd_pid" 2>/dev/null || break   # it exited: no point waiting
        sleep 1
    done
    if ! docker_answers; then
        tail -n 30 "$STATE_DIR/dockerd.log" >&2 || true
        die "dockerd did not start answering (log above: $STATE_DIR/dockerd.log)"
    fi
fi
log "docker engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?') is up"

# ---- local test images ---------------------------------------------------------------------

image_recipe() {
    docker image inspect --format '{{ index .Config.Labels "ecs-serverless.recipe" }}' "$1" 2>/dev/null || true
}

if [ "$(image_recipe "$BUSYBOX_IMAGE")" != "$BUSYBOX_RECIPE" ]; then
    log "building $BUSYBOX_IMAGE from busybox-static"
    # busybox-static's binary (checked above), statically linked, so it needs nothing else.
    busybox_bin=/bin/busybox
    [ -x "$busybox_bin" ] || die "$busybox_bin is missing although busybox-static is installed"

    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,var/www,home}
    chmod 1777 "$root/tmp"
    cp "$busybox_bin" "$root/bin/busybox"
    # Every applet this busybox has (sh, sleep, httpd, echo, cat, ls, wget, nc, true, false, env,
    # id, ps, kill, printenv, hostname, mkdir, test, wc, grep, ...), as a link in /bin.
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
        docker import \
            -c 'CMD ["/bin/sh"]' \
            -c 'ENV PATH=/bin' \
            -c "LABEL ecs-serverless.recipe=$BUSYBOX_RECIPE" \
            - "$BUSYBOX_IMAGE" >/dev/null
    rm -rf "$root"
    trap - EXIT
    docker run --rm "$BUSYBOX_IMAGE" sh -c 'echo ok' >/dev/null || die "$BUSYBOX_IMAGE was built but does not run"
fi
log "image $BUSYBOX_IMAGE is present"
log "ready"
