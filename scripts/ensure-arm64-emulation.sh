#!/usr/bin/env bash
# Make this (x86_64) machine run linux/arm64 binaries and containers under emulation, for
# `make images-arm64` and `make test-arm64`:
#   1. Debian's qemu-user-static and binfmt-support (apt-get, when missing), qemu 10 from
#      bookworm-backports: bookworm's own qemu 7.2 crashes in RabbitMQ's Erlang VM and in
#      `import onnxruntime` (signal 11), which qemu 10.0 runs;
#   2. the binfmt_misc filesystem at /proc/sys/fs/binfmt_misc (mounted when it is not);
#   3. the qemu-aarch64 handler registered and enabled there (update-binfmts).
# Idempotent; run as root. On an arm64 machine (a Pi) there is nothing to do.
set -euo pipefail

BINFMT=/proc/sys/fs/binfmt_misc
say() { echo "arm64-emulation: $*"; }
die() { echo "arm64-emulation: ERROR: $*" >&2; exit 1; }

case "$(uname -m)" in
aarch64 | arm64) say "this machine is arm64: no emulation needed"; exit 0 ;;
esac

MIN_QEMU_MAJOR=10
qemu_major() { /usr/bin/qemu-aarch64-static --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p'; }
if [ -e "$BINFMT/qemu-aarch64" ] && grep -q '^enabled' "$BINFMT/qemu-aarch64" \
    && [ "$(qemu_major)" -ge "$MIN_QEMU_MAJOR" ] 2>/dev/null; then
    say "ready: $(head -n1 "$BINFMT/qemu-aarch64") ($BINFMT/qemu-aarch64)"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages and mounts binfmt_misc)"

if ! [ "$(qemu_major)" -ge "$MIN_QEMU_MAJOR" ] 2>/dev/null || ! command -v update-binfmts >/dev/null; then
    command -v apt-get >/dev/null || die "needs apt-get to install qemu-user-static and binfmt-support"
    export DEBIAN_FRONTEND=noninteractive
    target=()
    if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
        echo "deb http://deb.debian.org/debian bookworm-backports main" \
            >/etc/apt/sources.list.d/acoustack-bookworm-backports.list
        target=(-t bookworm-backports)
    fi
    say "installing qemu-user-static ${target[*]} and binfmt-support"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${target[@]}" qemu-user-static binfmt-support
    [ "$(qemu_major)" -ge "$MIN_QEMU_MAJOR" ] 2>/dev/null \
        || die "qemu-aarch64-static is $(qemu_major).x; arm64 containers need qemu $MIN_QEMU_MAJOR or later"
    # A handler registered for the old binary keeps it open ('F'): register the new one.
    [ -e "$BINFMT/qemu-aarch64" ] && echo -1 >"$BINFMT/qemu-aarch64"
fi

if [ ! -e "$BINFMT/register" ]; then
    say "mounting binfmt_misc at $BINFMT"
    mount -t binfmt_misc binfmt_misc "$BINFMT" \
        || die "cannot mount binfmt_misc (a container without it cannot emulate arm64)"
fi
# The package registers its handlers when systemd or binfmt-support's service runs; a container
# runs neither, so enable them here (the 'F' flag keeps the interpreter open for every namespace).
# qemu 10 from backports ships its handler only in systemd's format (/usr/lib/binfmt.d, no
# update-binfmts entry): on a machine that never had qemu 7.2 that line is registered directly.
SYSTEMD_CONF=/usr/lib/binfmt.d/qemu-aarch64.conf
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
    if [ -e /usr/share/binfmts/qemu-aarch64 ]; then
        update-binfmts --import qemu-aarch64 >/dev/null
    elif [ -e "$SYSTEMD_CONF" ]; then
        grep -v '^#' "$SYSTEMD_CONF" | head -n1 >"$BINFMT/register"
    fi
fi
[ -e "$BINFMT/qemu-aarch64" ] && ! grep -q '^enabled' "$BINFMT/qemu-aarch64" \
    && echo 1 >"$BINFMT/qemu-aarch64"
[ -e "$BINFMT/qemu-aarch64" ] || die "qemu-aarch64 is not registered in $BINFMT"
grep -q '^enabled' "$BINFMT/qemu-aarch64" || die "qemu-aarch64 is registered but disabled"
say "ready: $(grep -E '^(enabled|interpreter|flags)' "$BINFMT/qemu-aarch64" | tr '\n' ' ')"
