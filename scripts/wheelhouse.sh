#!/usr/bin/env bash
# Prepare the wheelhouse an image installs from, offline: build/wheelhouse/<service>/ holds
#   requirements.txt  the locked third-party dependencies of PACKAGE (uv export --frozen, pinned ==)
#   *.whl             those dependencies as wheels (pip download, binary only, CPython 3.11)
#                     plus PACKAGE and the workspace packages it depends on, built with `uv build`
# Usage: scripts/wheelhouse.sh PACKAGE [OUT_DIR]       e.g. scripts/wheelhouse.sh acoustack-storage
# WHEEL_PLATFORM (e.g. manylinux2014_aarch64) fetches wheels for another machine than this one.
# Re-running only fetches what is missing (pip keeps files already in OUT_DIR).
set -euo pipefail

pkg=${1:?usage: scripts/wheelhouse.sh PACKAGE [OUT_DIR]}
out=${2:-build/wheelhouse/${pkg#acoustack-}}
UV=${UV:-uv}
# pip run by uv in a tool environment of its own: no need for a python3 that has pip (under
# `uv run` the workspace's .venv python comes first on PATH, and it has none).
PIP=${PIP:-"$UV" tool run --quiet --from pip pip}
cd "$(dirname "$0")/.."
mkdir -p "$out"

"$UV" export --quiet --frozen --no-dev --package "$pkg" --no-hashes --no-header --no-annotate \
    --no-emit-workspace -o "$out/requirements.txt"
platform=()
[ -n "${WHEEL_PLATFORM:-}" ] && platform=(--platform "$WHEEL_PLATFORM")
$PIP download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp "${platform[@]}" \
    -d "$out" -r "$out/requirements.txt"

# The workspace members it needs: the "-e ./path" lines of the full export.
rm -f "$out"/acoustack-*.whl "$out"/acoustack_*.whl
"$UV" export --quiet --frozen --no-dev --package "$pkg" --no-hashes --no-header --no-annotate \
    | sed -n 's/^-e //p' | while read -r member; do
        "$UV" build --quiet --wheel --out-dir "$out" "$member"
    done
echo "wheelhouse: $out ($(find "$out" -name '*.whl' | wc -l) wheels)"
