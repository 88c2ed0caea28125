#!/usr/bin/env bash
# The detector's build-time steps, in a throwaway virtual environment that holds torch:
#   build.sh model      export BatDetect2 1.3.1 to ONNX into $MODEL_DIR (skipped when up to date)
#   build.sh reference  re-make the parity fixtures with batdetect2's own API (tests/data/reference)
#
# Environment (the Makefile passes them through):
#   MODEL_DIR       output directory                       (default build/model)
#   MODEL_ENV       the build virtual environment          (default build/model-env)
#   PYTHON          the interpreter that creates it        (default python3; 3.9-3.13)
#   TORCH_PIP_ARGS  extra pip arguments for installing torch only. PyPI's torch for x86_64 Linux is
#                   the CUDA build (several GB, pulling nvidia-* packages), which this script
#                   refuses; point pip at a CPU-only build instead, e.g.
#                     make model TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
#                   (on arm64 too: PyPI's torch 2.13 for aarch64 pulls nvidia-cudnn-cu13).
#   MODEL_PIP_ARGS  extra pip arguments for every install, e.g. an offline wheelhouse:
#                     MODEL_PIP_ARGS="--no-index --find-links /path/to/wheels"
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cd "$repo"

MODEL_DIR=${MODEL_DIR:-build/model}
MODEL_ENV=${MODEL_ENV:-build/model-env}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
read -r -a torch_args <<<"${TORCH_PIP_ARGS:-}"
read -r -a pip_args <<<"${MODEL_PIP_ARGS:-}"

env_stamp="$MODEL_ENV/.acoustack-ready"
env_inputs=("$here/requirements.txt" "$here/requirements-batdetect2.txt")

say() { printf '%s\n' "$*" >&2; }

env_digest() { { echo "torch==$TORCH_VERSION"; cat "${env_inputs[@]}"; } | sha256sum; }

env_is_ready() { [ -f "$env_stamp" ] && [ "$(cat "$env_stamp")" = "$(env_digest)" ]; }

# Resolve torch without installing anything and refuse a CUDA build: its wheels are gigabytes and
# the export needs none of it.
refuse_cuda_torch() {
    local report="$MODEL_ENV/torch-resolution.json"
    "$MODEL_ENV/bin/pip" install --quiet --dry-run --ignore-installed --report "$report" \
        "${pip_args[@]}" "${torch_args[@]}" "torch==$TORCH_VERSION"
    if "$MODEL_ENV/bin/python" - "$report" <<'EOF'
import json, sys
names = [item["metadata"]["name"].lower() for item in json.load(open(sys.argv[1]))["install"]]
cuda = sorted(n for n in names if n.startswith(("nvidia-", "triton", "cuda-")))
sys.exit(1 if cuda else 0)
EOF
    then
        return 0
    fi
    say "make model: pip would install a CUDA build of torch $TORCH_VERSION (it resolves nvidia-*/triton"
    say "packages). Point it at a CPU-only build, e.g.:"
    say "  make model TORCH_PIP_ARGS=\"--index-url https://download.pytorch.org/whl/cpu\""
    exit 1
}

ensure_env() {
    if env_is_ready; then
        return
    fi
    say "== build environment $MODEL_ENV (torch $TORCH_VERSION CPU, batdetect2 1.3.1)"
    rm -rf "$MODEL_ENV"
    "$PYTHON" -m venv "$MODEL_ENV"
    "$MODEL_ENV/bin/python" -m pip install --quiet "${pip_args[@]}" "pip>=22.2"  # for --dry-run --report
    refuse_cuda_torch
    # torch first and alone, so resolving the other packages can never replace it.
    "$MODEL_ENV/bin/pip" install --quiet "${pip_args[@]}" "${torch_args[@]}" "torch==$TORCH_VERSION"
    "$MODEL_ENV/bin/pip" install --quiet "${pip_args[@]}" --no-deps --require-hashes \
        -r "$here/requirements-batdetect2.txt"
    say "(pip will report that batdetect2's click, matplotlib, torchaudio and torchvision are missing:"
    say " expected, neither the export nor the reference imports them)"
    "$MODEL_ENV/bin/pip" install --quiet "${pip_args[@]}" -r "$here/requirements.txt" "torch==$TORCH_VERSION"
    "$MODEL_ENV/bin/python" -c '
import sys, torch
if torch.version.cuda is not None:
    sys.exit(f"torch {torch.__version__} is a CUDA build; the export wants the CPU one")
print(f"torch {torch.__version__} (CPU)")'
    env_digest >"$env_stamp"
}

case "${1:-}" in
model)
    if "$PYTHON" "$here/export.py" --check-stamp "$MODEL_DIR"; then
        say "$MODEL_DIR is up to date (BatDetect2 1.3.1, checkpoint sha256 verified at export)"
        exit 0
    fi
    ensure_env
    say "== export to $MODEL_DIR"
    "$MODEL_ENV/bin/python" -W "ignore::DeprecationWarning" "$here/export.py" "$MODEL_DIR"
    ;;
reference)
    ensure_env
    say "== batdetect2 1.3.1 reference detections -> services/detector/tests/data/reference"
    "$MODEL_ENV/bin/python" "$here/reference.py"
    ;;
*)
    say "usage: $0 model|reference"
    exit 2
    ;;
esac
