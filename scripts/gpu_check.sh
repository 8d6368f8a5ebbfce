#!/usr/bin/env bash
# The GPU half of the tests (SPEC §9), for a machine with an NVIDIA GPU and driver: builds the
# kernels with nvcc (ptxas figures printed), shows the GPU, runs the CPU-vs-CUDA tests with
# ALPHANET_REQUIRE_GPU=1 so that a test skipped for want of a GPU fails the script, then a short
# benchmark when `alphanet bench` exists.
#
#   bash scripts/gpu_check.sh
#
# nvcc is taken from CUDA_HOME, PATH or /usr/local/cuda; failing those, the pinned wheels are
# installed (scripts/install_cuda_wheels.sh, needs PyPI) into CUDA_WHEELS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

nvidia-smi

if [[ -z "${CUDA_HOME:-}" ]] && ! command -v nvcc >/dev/null && [[ ! -x /usr/local/cuda/bin/nvcc ]]; then
    CUDA_HOME=$(bash scripts/install_cuda_wheels.sh "${CUDA_WHEELS_DIR:-$HOME/.cache/alphanet/cuda-wheels}" | tail -n 1)
fi
if [[ -n "${CUDA_HOME:-}" ]]; then
    export CUDA_HOME
    export PATH="$CUDA_HOME/bin:$PATH"
    export LD_LIBRARY_PATH="$CUDA_HOME/lib:$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}"
fi
export KERNELS_REQUIRE_NVCC=1 KERNELS_VERBOSE=1 ALPHANET_REQUIRE_GPU=1

cargo build --release
cargo test --release --test nvrtc_compile --test kernel_host_maths
# One test at a time, so the per-kernel table of each test prints unmixed.
cargo test --release --test cuda_vs_cpu -- --nocapture --test-threads=1

bin=target/release/alphanet
if help=$("$bin" bench --help 2>/dev/null); then
    if grep -q -- '--device' <<<"$help"; then
        "$bin" bench --device cuda:0
    else
        "$bin" bench
    fi
else
    echo "gpu_check: no \`alphanet bench\` in this build; benchmark skipped"
fi
echo "gpu_check: all GPU checks passed"
