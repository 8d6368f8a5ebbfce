#!/usr/bin/env bash
# The test command: every check, on any machine. The CUDA tests run on a real GPU when there is
# one and on the project's CPU stand-in for the CUDA driver otherwise; both need the kernels as
# nvcc fatbins (or NVRTC), so the pinned CUDA 13.0 compiler wheels are installed first (from PyPI,
# idempotent, into CUDA_WHEELS_DIR, default ~/.cache/alphanet/cuda-wheels) unless CUDA_HOME is set.
#
#   bash scripts/test.sh [cargo test arguments…]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${CUDA_HOME:-}" ]]; then
    CUDA_HOME=$(bash scripts/install_cuda_wheels.sh "${CUDA_WHEELS_DIR:-$HOME/.cache/alphanet/cuda-wheels}" | tail -n 1)
fi
export CUDA_HOME
export PATH="$CUDA_HOME/bin:$PATH"
export LD_LIBRARY_PATH="$CUDA_HOME/lib:${LD_LIBRARY_PATH:-}"
# A kernel that stops compiling fails the build instead of falling back to NVRTC at run time.
export KERNELS_REQUIRE_NVCC=1

# NumPy: the panel tests load every .npy file the engine writes with NumPy. The system Python's
# when it has it, else a virtual environment of the checkout (target/test-venv): nothing is
# installed into the system. Passed to the tests as ALPHANET_TEST_PYTHON, not through PATH, which
# build.rs watches (a changed PATH would rebuild the crate).
py=python3
if ! python3 -c "import numpy" 2>/dev/null; then
    py=target/test-venv/bin/python
    [[ -x $py ]] || python3 -m venv target/test-venv
    "$py" -c "import numpy" 2>/dev/null || "$py" -m pip install -q --disable-pip-version-check numpy
fi
export ALPHANET_TEST_PYTHON=$py

cargo test --release "$@"
