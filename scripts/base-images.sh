#!/usr/bin/env bash
# The base image every acoustack image starts from, made without a container registry:
#   $DEBIAN_IMAGE  (debian:bookworm-slim)  Debian bookworm minbase for $ARCH, made by debootstrap
#                  from the Debian mirror and loaded into Docker with that architecture in its
#                  config; BASE_SOURCE=pull takes Docker Hub's instead (a Pi, or any machine that
#                  reaches Docker Hub).
# ARCH (default: this machine's) amd64 or arm64. Another architecture than this machine's needs
# its binaries emulated (scripts/ensure-arm64-emulation.sh); Docker Hub names that image
# arm64v8/debian:bookworm-slim, which is what the Makefile asks for there.
# The Dockerfiles name it by default, so the same files build here and on a machine that pulls.
# An image that exists is kept; FORCE=1 makes it again. Run as root (debootstrap needs it).
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
FORCE=${FORCE:-0}
BASE_SOURCE=${BASE_SOURCE:-debootstrap}
DEBIAN_IMAGE=${DEBIAN_IMAGE:-debian:bookworm-slim}
ARCH=${ARCH:-$(dpkg --print-architecture)}
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
    if [ "$ARCH" != "$(dpkg --print-architecture)" ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-aarch64" ]; then
        die "debootstrap for $ARCH runs its binaries under emulation: run scripts/ensure-arm64-emulation.sh"
    fi
    local root
    root=$(mktemp -d /var/tmp/acoustack-rootfs.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    say "debootstrap --arch=$ARCH --variant=minbase $SUITE from $DEBIAN_MIRROR"
    debootstrap --arch="$ARCH" --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR" >"$root.log" 2>&1 \
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

    say "loading it as $DEBIAN_IMAGE ($ARCH)"
    load_rootfs "$root" "$DEBIAN_IMAGE"
    rm -rf "$root"
    trap - EXIT
}

# `docker import` would label the image with this machine's architecture (its --platform needs an
# experimental daemon), and a build for another platform would then not take it: so the image is
# loaded as a `docker save` archive (one layer, a config naming $ARCH) instead.
load_rootfs() {
    local root=$1 image=$2 archive layer_sum config config_sum
    archive=$(mktemp -d /var/tmp/acoustack-image.XXXXXX)
    tar -C "$root" --numeric-owner -cf "$archive/layer.tar" .
    layer_sum=$(sha256sum "$archive/layer.tar" | cut -d' ' -f1)
    config=$(printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"],"Labels":{"org.opencontainers.image.description":"Debian %s minbase (%s), made by debootstrap (acoustack scripts/base-images.sh)"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"debootstrap --variant=minbase %s"}]}' \
        "$ARCH" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SUITE" "$ARCH" "$layer_sum" "$SUITE")
    config_sum=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
    printf '%s' "$config" >"$archive/$config_sum.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' \
        "$config_sum" "$image" >"$archive/manifest.json"
    tar -C "$archive" -c manifest.json "$config_sum.json" layer.tar | "$DOCKER" load >/dev/null
    rm -rf "$archive"
}

start=$SECONDS
if have_image "$DEBIAN_IMAGE"; then
    say "$DEBIAN_IMAGE exists (FORCE=1 makes it again)"
elif [ "$BASE_SOURCE" = pull ]; then
    "$DOCKER" pull --platform "linux/$ARCH" "$DEBIAN_IMAGE"
else
    make_debian_image
fi

say "done in $((SECONDS - start)) s: $DEBIAN_IMAGE ($("$DOCKER" image inspect -f '{{.Architecture}}' "$DEBIAN_IMAGE"))"
