#!/usr/bin/env bash
# A second, throwaway Docker engine whose storage can size a container's writable layer
# (`--storage-opt size=`, what the worker passes for a task's ephemeralStorage), for the worker's test
# of it (tests/Worker.Tests/Docker/EphemeralStorageDockerTests.cs). It never touches the machine's own
# engine: its own data root, exec root, pid file, socket, containerd and config, no bridge, no iptables.
#
#   bash scripts/sized-engine.sh start DIR   # prints ENDPOINT=unix://DIR/docker.sock and DRIVER=overlay2|btrfs
#   bash scripts/sized-engine.sh stop DIR    # removes everything start made (safe to repeat, and after a failed start)
#
# DIR must not exist at start (keep it short: unix socket paths have a 108-byte limit). start makes a
# sparse 64 GiB file DIR.img (a few MiB of real disk), puts a filesystem on it and loop-mounts it on DIR/mnt:
#   1. xfs mounted with pquota, for overlay2 (what production engines use); the kernel must have
#      CONFIG_XFS_QUOTA, else the mount fails with "quota support not available in this kernel";
#   2. else btrfs, for the btrfs storage driver (it limits the container's subvolume with a qgroup).
# Then it starts dockerd on it and loads local/busybox:latest from the main engine. A failed start
# cleans up after itself. Installs xfsprogs / btrfs-progs when missing (apt). Needs root and loop devices.
# Exit status 3: this machine cannot make such an engine (not root, no loop device, neither filesystem);
# the reason is on stderr. Any other failure: 1.
set -euo pipefail

action="${1:-}"
dir="${2:-}"
[ -n "$action" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
dir="$(realpath -m "$dir")"
image="$dir.img"
mnt="$dir/mnt"
socket="$dir/docker.sock"
busybox="local/busybox:latest"

log() { printf 'sized-engine: %s\n' "$*" >&2; }
cannot() { log "cannot make a sized engine on this machine: $*"; exit 3; }
engine() { docker -H "unix://$socket" "$@"; }

stop() {
    if [ -S "$socket" ]; then
        # Its containers first, so no shim keeps the mount busy.
        ids="$(timeout 30 docker -H "unix://$socket" ps -aq 2>/dev/null || true)"
        [ -z "$ids" ] || timeout 60 docker -H "unix://$socket" rm -f $ids >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/dockerd.pid" ]; then
        pid="$(cat "$dir/dockerd.pid")"
        # Only this engine's dockerd: its pid file, and its command line naming this directory.
        if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--data-root $mnt/docker"; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    # Its containerd (dockerd stops it; a killed dockerd may leave it): found by its config under DIR.
    for pid in $(pgrep -f -- "--config $dir/exec/containerd/containerd.toml" || true); do
        kill "$pid" 2>/dev/null || true
        sleep 1
        kill -9 "$pid" 2>/dev/null || true
    done
    # Mounts under DIR (the engine's own, then the filesystem), deepest first.
    if [ -d "$dir" ]; then
        for target in $(findmnt -rn -o TARGET | grep -F -- "$dir/" | sort -r); do
            umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
        done
    fi
    # The loop device (mount -o loop detaches it at umount; this is for one left by a failed mount).
    for loop in $(losetup -j "$image" -O NAME -n 2>/dev/null || true); do
        losetup -d "$loop" 2>/dev/null || true
    done
    rm -rf "$dir" "$image"
}

if [ "$action" = stop ]; then
    stop
    exit 0
fi
[ "$action" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || cannot "not root (needs mount and losetup)"
[ -e /dev/loop-control ] || cannot "no /dev/loop-control (no loop devices)"
command -v dockerd >/dev/null 2>&1 || { log "dockerd is missing (bash scripts/install-deps.sh)"; exit 1; }
[ ! -e "$dir" ] || { log "$dir exists; stop it first"; exit 1; }

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get install $*"
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null 2>&1 ||
        { apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 && apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null; }
}

trap 'status=$?; if [ "$status" -ne 0 ]; then log "start failed; cleaning up"; tail -n 20 "$dir/dockerd.log" >&2 2>/dev/null || true; stop; fi' EXIT
mkdir -p "$mnt" "$dir/exec"
truncate -s 64G "$image"

driver=""
if grep -qw xfs /proc/filesystems; then
    command -v mkfs.xfs >/dev/null 2>&1 || apt_install xfsprogs
    mkfs.xfs -q -f "$image"
    if mount -o loop,pquota "$image" "$mnt" 2>"$dir/mount.err"; then
        driver=overlay2
    else
        log "xfs with pquota does not mount here ($(tr '\n' ' ' <"$dir/mount.err")$(dmesg 2>/dev/null | grep -i 'xfs.*quota' | tail -n 1 || true)); trying btrfs"
    fi
fi
if [ -z "$driver" ] && grep -qw btrfs /proc/filesystems; then
    command -v mkfs.btrfs >/dev/null 2>&1 || apt_install btrfs-progs
    mkfs.btrfs -q -f "$image" >/dev/null
    mount -o loop "$image" "$mnt"
    driver=btrfs
fi
[ -n "$driver" ] || { trap - EXIT; stop; cannot "the kernel has neither xfs with quota support nor btrfs"; }

echo '{}' >"$dir/daemon.json"
# setsid: its own session; 9>&-: no lock fd of a caller (install-deps.sh) is held by it.
# unshare --net: its own network namespace. A dockerd started with --bridge none deletes the host's
# docker0 (libnetwork's removeDefaultBridgeInterface) and so breaks every container the main engine
# starts after it; in a namespace of its own it deletes nothing the main engine uses.
setsid unshare --net dockerd \
    --config-file "$dir/daemon.json" \
    --data-root "$mnt/docker" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    --host "unix://$socket" \
    --storage-driver "$driver" \
    --bridge none --iptables=false --ip6tables=false --ip-masq=false \
    >"$dir/dockerd.log" 2>&1 </dev/null 9>&- &
for _ in $(seq 1 60); do
    timeout 5 docker -H "unix://$socket" info >/dev/null 2>&1 && break
    sleep 1
done
timeout 10 docker -H "unix://$socket" info >/dev/null 2>&1 || { log "its dockerd does not answer"; exit 1; }
docker save "$busybox" | engine load -q >/dev/null
trap - EXIT
log "up: $driver on $(findmnt -n -o FSTYPE,OPTIONS "$mnt")"
echo "ENDPOINT=unix://$socket"
echo "DRIVER=$driver"
