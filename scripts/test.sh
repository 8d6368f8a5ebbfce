#!/usr/bin/env bash
# The test command: every check, on any machine. The CUDA tests run on a real GPU when there is
# one and on the project's CPU stand-in for the CUDA driver otherwise.
#
#   bash scripts/test.sh [cargo test arguments…]
#
# One build: this script changes none of the build's inputs (build.rs watches NVCC, CUDA_HOME,
# CUDA_PATH, KERNELS_REQUIRE_NVCC and, when it searches for nvcc there, PATH), so after
# `cargo run --release -- demo` only the test binaries are compiled. The kernels are nvcc fatbins
# when the build found nvcc; otherwise they are compiled with NVRTC when first loaded, which needs
# libnvrtc at run time only: the pinned CUDA 13.0 wheels are installed for that (from PyPI,
# idempotent, into CUDA_WHEELS_DIR, default ~/.cache/alphanet/cuda-wheels) and put on
# LD_LIBRARY_PATH, which the build does not watch. CI (.ci/run) sets CUDA_HOME, PATH and
# KERNELS_REQUIRE_NVCC=1 before its first build, so there every kernel is compiled by nvcc and
# one that stops compiling fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."

cuda_lib=${CUDA_HOME:-}
if [[ -z "$cuda_lib" ]]; then
    cuda_lib=$(bash scripts/install_cuda_wheels.sh "${CUDA_WHEELS_DIR:-$HOME/.cache/alphanet/cuda-wheels}" | tail -n 1)
fi
export LD_LIBRARY_PATH="$cuda_lib/lib:${LD_LIBRARY_PATH:-}"

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
