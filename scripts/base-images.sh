#!/usr/bin/env bash
# The base images every acoustack image starts from, made without a container registry:
#   $DEBIAN_IMAGE  (debian:bookworm-slim)  Debian bookworm minbase, made by debootstrap from the
#                  Debian mirror and imported (`docker import`); BASE_SOURCE=pull takes Docker Hub's
#                  instead (a Pi, or any machine that reaches Docker Hub).
#   $PYTHON_IMAGE  (acoustack/python:3.11-bookworm)  compose/images/python/Dockerfile on top of it.
# The Dockerfiles name these by default, so the same files build here and on a machine that pulls.
# An image that exists is kept; FORCE=1 makes both again. Run as root (debootstrap needs it).
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
FORCE=${FORCE:-0}
BASE_SOURCE=${BASE_SOURCE:-debootstrap}
DEBIAN_IMAGE=${DEBIAN_IMAGE:-debian:bookworm-slim}
PYTHON_IMAGE=${PYTHON_IMAGE:-acoustack/python:3.11-bookworm}
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cd "$(dirname "$0")/.."

say() { echo "base-images: $*"; }
die() { echo "base-images: ERROR: $*" >&2; exit 1; }
have_image() { [ "$FORCE" != 1 ] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/ensure-docker.sh (as root)"

make_debian_image() {
    command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/ensure-docker.sh"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    local root
    root=$(mktemp -d /var/tmp/acoustack-rootfs.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    say "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR"
    debootstrap --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR" >"$root.log" 2>&1 \
        || { tail -n 30 "$root.log" >&2; die "debootstrap failed (full log: $root.log)"; }
    rm -f "$root.log"

    # Make it like Docker Hub's debian:bookworm-slim: its apt sources, no caches, no docs.
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
    find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*.log \
        "$root"/tmp/* "$root"/var/tmp/*
    rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
    : >"$root/etc/machine-id"

    say "importing it as $DEBIAN_IMAGE"
    tar -C "$root" --numeric-owner -c . | "$DOCKER" import \
        --change 'CMD ["bash"]' \
        --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase, made by debootstrap (acoustack scripts/base-images.sh)\"" \
        - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$root"
    trap - EXIT
}

start=$SECONDS
if have_image "$DEBIAN_IMAGE"; then
    say "$DEBIAN_IMAGE exists (FORCE=1 makes it again)"
elif [ "$BASE_SOURCE" = pull ]; then
    "$DOCKER" pull "$DEBIAN_IMAGE"
else
    make_debian_image
fi

if have_image "$PYTHON_IMAGE"; then
    say "$PYTHON_IMAGE exists (FORCE=1 makes it again)"
else
    say "building $PYTHON_IMAGE"
    DOCKER_BUILDKIT=1 "$DOCKER" build --build-arg "BASE_IMAGE=$DEBIAN_IMAGE" \
        -t "$PYTHON_IMAGE" compose/images/python
fi
say "done in $((SECONDS - start)) s: $DEBIAN_IMAGE, $PYTHON_IMAGE"
