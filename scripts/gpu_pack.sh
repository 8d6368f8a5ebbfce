#!/usr/bin/env bash
# Builds, here (Rust toolchain, nvcc from CUDA_HOME or the pinned wheels), everything the GPU
# machine runs, since that machine has CUDA but no Rust toolchain and no package registries:
# the release `alphanet` binary and the test binaries that touch the GPU, with the kernels as nvcc
# fatbins (sm_80, sm_90 SASS + compute_90 PTX) embedded, stripped, into the git-ignored `.gpu/`.
#
#   bash scripts/gpu_pack.sh          # then carry .gpu to the GPU machine and run
#   bash scripts/gpu_check.sh LOGDIR  # there (no cargo)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${CUDA_HOME:-}" ]]; then
    CUDA_HOME=$(bash scripts/install_cuda_wheels.sh "${CUDA_WHEELS_DIR:-$HOME/.cache/alphanet/cuda-wheels}" | tail -n 1)
fi
export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH" KERNELS_REQUIRE_NVCC=1

# The test binaries that open a GPU (every cuda_vs_cpu_* binary: a cargo target pattern), and the
# library's unit tests (device selection, bench).
tests=('cuda_vs_cpu_*' device nvrtc_compile)
cargo build --release --bin alphanet
json=$(cargo test --release --no-run --lib "${tests[@]/#/--test=}" --message-format=json)

rm -rf .gpu
mkdir -p .gpu
strip -o .gpu/alphanet target/release/alphanet
python3 - "$json" <<'PY'
import json, subprocess, sys
for line in sys.argv[1].splitlines():
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    kind = m["target"]["kind"][0]
    name = "unit_tests" if kind == "lib" else m["target"]["name"]
    subprocess.run(["strip", "-o", f".gpu/{name}", m["executable"]], check=True)
PY
git rev-parse HEAD >.gpu/COMMIT
git diff --quiet HEAD || echo "uncommitted changes on top" >>.gpu/COMMIT
du -ch .gpu/* | sed 's/^/gpu_pack: /'
total=$(du -sb .gpu | cut -f1)
if ((total > 64 * 1024 * 1024)); then
    echo "gpu_pack: .gpu is $total bytes, over the 64 MiB a GPU run can carry" >&2
    exit 1
fi
