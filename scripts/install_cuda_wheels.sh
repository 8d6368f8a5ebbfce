#!/usr/bin/env bash
# Installs a CUDA 13.0 compiler toolchain (nvcc, cicc, ptxas, headers, NVRTC) from NVIDIA's
# PyPI wheels into DIR, without root and without a system CUDA install, and prints the
# CUDA_HOME to use. Idempotent: a second run with the same pins does nothing.
#
#   bash scripts/install_cuda_wheels.sh /tmp/cuda-wheels
#   export CUDA_HOME=/tmp/cuda-wheels/nvidia/cu13
#   export PATH="$CUDA_HOME/bin:$PATH" LD_LIBRARY_PATH="$CUDA_HOME/lib:${LD_LIBRARY_PATH:-}"
set -euo pipefail

dir=${1:?usage: install_cuda_wheels.sh DIR}
pins=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-nvrtc==13.0.88
)
home="$dir/nvidia/cu13"
stamp="$dir/.alphanet-cuda-wheels"

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "${pins[*]}" ]]; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --upgrade \
        --target "$dir" "${pins[@]}"
    echo "${pins[*]}" >"$stamp"
fi

# The wheels lay out a complete toolkit tree: bin/nvcc reads bin/nvcc.profile, which points at
# nvvm/bin/cicc, nvvm/libdevice and include/ (crt/ and cccl/ included) relative to itself.
# Check it really compiles rather than trusting the layout.
for f in bin/nvcc bin/ptxas bin/fatbinary nvvm/bin/cicc include/crt/host_config.h \
    include/cuda_runtime.h lib/libnvrtc.so.13; do
    [[ -e "$home/$f" ]] || { echo "install_cuda_wheels: $home/$f missing after install" >&2; exit 1; }
done
chmod +x "$home"/bin/* "$home"/nvvm/bin/*
# Tools and libraries with an unversioned name, for build systems that look for them.
ln -sf libnvrtc.so.13 "$home/lib/libnvrtc.so"
ln -sf libcudart.so.13 "$home/lib/libcudart.so"

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" __global__ void k(float* x) { x[threadIdx.x] *= 2.0f; }\n' >"$probe/k.cu"
if ! "$home/bin/nvcc" --fatbin -gencode arch=compute_90,code=sm_90 -o "$probe/k.fatbin" "$probe/k.cu" \
    >"$probe/log" 2>&1; then
    cat "$probe/log" >&2
    echo "install_cuda_wheels: nvcc from $home cannot compile a test kernel" >&2
    exit 1
fi
"$home/bin/nvcc" --version | tail -n 2 >&2
echo "$home"
