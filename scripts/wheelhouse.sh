#!/usr/bin/env bash
# Prepare the wheelhouse an image installs from, offline: build/wheelhouse/<service>/ holds
#   requirements.txt  the locked third-party dependencies of PACKAGE (uv export --frozen, pinned ==)
#   *.whl             those dependencies as wheels (pip download, binary only, CPython 3.11)
#                     plus PACKAGE and the workspace packages it depends on, built with `uv build`
# Usage: scripts/wheelhouse.sh PACKAGE [OUT_DIR]       e.g. scripts/wheelhouse.sh acoustack-storage
# WHEEL_PLATFORM fetches wheels for another machine than this one: one platform tag or several,
# space-separated (e.g. "manylinux_2_36_aarch64 manylinux2014_aarch64" for a Debian bookworm arm64).
# EXTRAS (e.g. microphone) adds the package's optional dependencies. A dependency that PyPI has
# only as source (PyAudio) is fetched as its sdist; the image's builder stage compiles it.
# The Dockerfiles' wheels stage (WHEELS=pypi) runs it too, where uv is missing: uv $UV_VERSION is
# then installed into a venv of its own, and Python is never downloaded (the image's is used).
SOURCE_ONLY=${SOURCE_ONLY:-pyaudio}
UV_VERSION=${UV_VERSION:-0.13.9}
# Re-running only fetches what is missing (pip keeps files already in OUT_DIR).
set -euo pipefail

pkg=${1:?usage: scripts/wheelhouse.sh PACKAGE [OUT_DIR]}
out=${2:-build/wheelhouse/${pkg#acoustack-}}
UV=${UV:-uv}
# pip and uv trust the system's CA bundle, not only their own (in an image build it is the host's,
# handed over as the build secret ca-certificates): a TLS-inspecting proxy's CA works too.
system_ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$system_ca" ]; then
    export PIP_CERT=${PIP_CERT:-$system_ca} SSL_CERT_FILE=${SSL_CERT_FILE:-$system_ca}
fi
if ! command -v "$UV" >/dev/null; then
    uv_env=$(mktemp -d)/uv
    python3 -m venv "$uv_env"
    "$uv_env/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    UV=$uv_env/bin/uv
    export UV_PYTHON_DOWNLOADS=never
fi
# pip run by uv in a tool environment of its own: no need for a python3 that has pip (under
# `uv run` the workspace's .venv python comes first on PATH, and it has none).
PIP=${PIP:-"$UV" tool run --quiet --from pip pip}
cd "$(dirname "$0")/.."
mkdir -p "$out"

extras=()
for extra in ${EXTRAS:-}; do extras+=(--extra "$extra"); done
"$UV" export --quiet --frozen --no-dev --package "$pkg" "${extras[@]}" --no-hashes --no-header \
    --no-annotate --no-emit-workspace -o "$out/requirements.txt"
platform=()
for tag in ${WHEEL_PLATFORM:-}; do platform+=(--platform "$tag"); done
source_only_pattern="^($(echo "$SOURCE_ONLY" | tr ' ' '|'))=="
grep -viE "$source_only_pattern" "$out/requirements.txt" >"$out/binary-requirements.txt" || true
$PIP download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp "${platform[@]}" \
    -d "$out" -r "$out/binary-requirements.txt"
grep -iE "$source_only_pattern" "$out/requirements.txt" >"$out/source-requirements.txt" || true
if [ -s "$out/source-requirements.txt" ]; then
    $PIP download --quiet --no-deps --no-binary=:all: -d "$out" -r "$out/source-requirements.txt"
    # What pip's isolated build of those needs, since the image installs with no index.
    $PIP download --quiet --only-binary=:all: -d "$out" setuptools wheel
fi
rm -f "$out/binary-requirements.txt" "$out/source-requirements.txt"

# The workspace members it needs: the "-e ./path" lines of the full export.
rm -f "$out"/acoustack-*.whl "$out"/acoustack_*.whl
"$UV" export --quiet --frozen --no-dev --package "$pkg" --no-hashes --no-header --no-annotate \
    | sed -n 's/^-e //p' | while read -r member; do
        "$UV" build --quiet --wheel --out-dir "$out" "$member"
    done
echo "wheelhouse: $out ($(find "$out" -name '*.whl' | wc -l) wheels)"
