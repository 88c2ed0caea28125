#!/usr/bin/env bash
# Build every acoustack image for one platform from what the host prepared, with no registry:
# acoustack/{postgres,rabbitmq,mosquitto} from compose/images/ and the six services from
# services/<name>/Dockerfile with WHEELS=local (the wheelhouse in $WHEELHOUSE/<service>) and
# MODEL=local (build/model: the ONNX files are the same on every architecture).
# `make images` runs it for this machine, `make images-arm64` for linux/arm64 (emulated here).
# Environment: TAG (the images' tag), DEBIAN_IMAGE (the base, for that platform), WHEELHOUSE,
# PLATFORM (empty: this machine's; e.g. linux/arm64), DOCKER, and BUILD_TIMEOUT_S for each image.
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
TAG=${TAG:?TAG is the images tag, e.g. dev}
DEBIAN_IMAGE=${DEBIAN_IMAGE:-debian:bookworm-slim}
WHEELHOUSE=${WHEELHOUSE:-build/wheelhouse}
PLATFORM=${PLATFORM:-}
BUILD_TIMEOUT_S=${BUILD_TIMEOUT_S:-3600}
SERVICES=${SERVICES:-storage detector recorder messenger scheduler dashboard hub}
INFRA=${INFRA:-postgres rabbitmq mosquitto}
cd "$(dirname "$0")/.."

die() { echo "build-images: ERROR: $*" >&2; exit 1; }
"$DOCKER" image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1 \
    || die "no base image $DEBIAN_IMAGE: run scripts/base-images.sh (make base-images)"
[ -f build/model/batdetect2.json ] || die "no model in build/model: run make model"

build=(timeout "$BUILD_TIMEOUT_S" env DOCKER_BUILDKIT=1 "$DOCKER" build --build-arg "BASE_IMAGE=$DEBIAN_IMAGE")
[ -n "$PLATFORM" ] && build+=(--platform "$PLATFORM")

for image in $INFRA; do
    echo "== acoustack/$image:$TAG ${PLATFORM:+($PLATFORM)}"
    "${build[@]}" -t "acoustack/$image:$TAG" "compose/images/$image"
done
[ -d "$WHEELHOUSE/common" ] || die "no wheelhouse $WHEELHOUSE/common: run make wheelhouse"
for service in $SERVICES; do
    [ -d "$WHEELHOUSE/$service" ] || die "no wheelhouse $WHEELHOUSE/$service: run make wheelhouse"
    echo "== acoustack/$service:$TAG ${PLATFORM:+($PLATFORM)}"
    "${build[@]}" --build-arg WHEELS=local --build-arg "WHEELHOUSE=$WHEELHOUSE" \
        --build-arg MODEL=local -t "acoustack/$service:$TAG" -f "services/$service/Dockerfile" .
done
