#!/usr/bin/env bash
# The Python package's checks: a virtual environment with the pinned test tools and pyqlib from
# PyPI, `pip install .` (maturin builds the extension from python/ against this checkout), the
# `alphanet` binary for the CLI-parity test, the pytest suite (python/tests/), then the example
# (examples/quickstart.py) run top to bottom.
#
#   bash scripts/test_python.sh [pytest arguments…]
#
# PY_VENV: the environment (default target/py-venv; FRESH_VENV=1 recreates it). The qlib test reads
# ../shared/data/ashare-qlib (ALPHANET_SHARED_QLIB to point elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."

# NVRTC at run time only, as in scripts/test.sh: the build's inputs are left as they are, so the
# engine built by `cargo run --release` or scripts/test.sh is not rebuilt here.
cuda_lib=${CUDA_HOME:-}
if [[ -z "$cuda_lib" ]]; then
    cuda_lib=$(bash scripts/install_cuda_wheels.sh "${CUDA_WHEELS_DIR:-$HOME/.cache/alphanet/cuda-wheels}" | tail -n 1)
fi
export LD_LIBRARY_PATH="$cuda_lib/lib:${LD_LIBRARY_PATH:-}"
# One target folder for the engine and the bindings, so the engine's dependencies build once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

venv=${PY_VENV:-target/py-venv}
if [[ "${FRESH_VENV:-0}" == 1 ]]; then
    rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
t0=$SECONDS
"$py" -m pip install -q --upgrade pip
# Versions the suite was last run with (pyqlib 0.9.7 has CPython 3.11 wheels).
"$py" -m pip install -q "maturin==1.16.0" "pytest==9.2.0" "pyqlib==0.9.7" "numpy==2.4.6" "pandas==3.1.1"
echo "test_python: environment ready in $((SECONDS - t0)) s"

t0=$SECONDS
cargo build --release --bin alphanet
"$py" -m pip install -q .
echo "test_python: alphanet and alphanet_rs built in $((SECONDS - t0)) s"

export ALPHANET_BIN="$CARGO_TARGET_DIR/release/alphanet"
# Run from outside the checkout so `import alphanet_rs` is the installed package.
repo=$PWD
cd "${TMPDIR:-/tmp}"
"$repo/$venv/bin/python" -m pytest -q -p no:cacheprovider "$repo/python/tests" "$@"
"$repo/$venv/bin/python" "$repo/examples/quickstart.py" > /dev/null
echo "test_python: examples/quickstart.py ran"
