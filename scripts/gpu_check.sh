#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, its driver and CUDA tools but no Rust toolchain:
# runs what `scripts/gpu_pack.sh` left in `.gpu/` (built elsewhere). Meant to fit one short GPU
# window twice (well under 8 minutes):
#   1. the GPU, driver and compute capability;
#   2. every GPU test alone in its own process under a timeout (a fault cannot poison the rest);
#   3. `alphanet bench` on cuda:0 and on the CPU, and the PyTorch peer (eager, torch.compile),
#      same batches, same machine;
#   4. per-kernel GPU time (ncu) of the v2 step at batch 16384;
#   5. compute-sanitizer memcheck and racecheck over the kernel cases (cuda_vs_cpu_kernels'
#      every_kernel_matches_its_cpu_op), where the runtime allows.
# Everything is tee'd into LOGDIR/gpu_check.log; benches also as JSON.
#
#   bash scripts/gpu_check.sh [LOGDIR]     (default: $GPU_CHECK_LOG_DIR, else gpu-logs)
# Environment: GPU_CHECK_BATCHES (default 1000,4096,16384), GPU_CHECK_SKIP (space-separated
# stage names to skip: tests bench bench-cpu peer profile sanitize).
set -uo pipefail
cd "$(dirname "$0")/.."
logdir=${1:-${GPU_CHECK_LOG_DIR:-gpu-logs}}
mkdir -p "$logdir"
exec > >(tee "$logdir/gpu_check.log") 2>&1
batches=${GPU_CHECK_BATCHES:-1000,4096,16384}
skip=" ${GPU_CHECK_SKIP:-} "
bin=.gpu
[[ -x $bin/alphanet ]] || { echo "gpu_check: no $bin/alphanet: run scripts/gpu_pack.sh on a machine with cargo first"; exit 2; }
failures=()
t0=$SECONDS

stage() { echo; echo "=== $1 ($((SECONDS - t0)) s)"; }
wants() { [[ $skip != *" $1 "* ]]; }
# run NAME TIMEOUT CMD...: records a failure (with timeouts named as such) without stopping.
run() {
    local name=$1 limit=$2 rc
    shift 2
    timeout --kill-after=5 "$limit" "$@"
    rc=$?
    if ((rc == 124 || rc == 137)); then
        failures+=("$name: timed out after ${limit}s")
    elif ((rc != 0)); then
        failures+=("$name: exit $rc")
    fi
    return $rc
}

stage "machine"
cat $bin/COMMIT
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.sm --format=csv
ldd --version | head -n 1
for home in "${CUDA_HOME:-}" /usr/local/cuda; do
    if [[ -n $home && -d $home/lib64 || -n $home && -d $home/lib ]]; then
        export CUDA_HOME=$home
        break
    fi
done
echo "CUDA_HOME=${CUDA_HOME:-unset}"
command -v nvcc >/dev/null && nvcc --version | tail -n 1
export ALPHANET_REQUIRE_GPU=1 KERNELS_REQUIRE_NVCC=1 RUST_BACKTRACE=1

if wants tests; then
    stage "GPU tests, one process each"
    # Every CPU-vs-CUDA binary (cuda_vs_cpu_kernels, cuda_vs_cpu_training, ...), test by test.
    suites=($bin/cuda_vs_cpu_*)
    [[ -x ${suites[0]} ]] || failures+=("cuda_vs_cpu_*: no such test binary in $bin")
    for suite in "${suites[@]}"; do
        [[ -x $suite ]] || continue
        name=${suite##*/}
        for t in $($suite --list --format terse | sed -n 's/: test$//p'); do
            echo "--- $name::$t"
            run "$name::$t" 150 $suite --exact "$t" --nocapture --test-threads=1
        done
    done
    echo "--- device (every model trains on cuda:0 via the CLI; runs bit-identical; demo market)"
    ALPHANET_BIN=$bin/alphanet run device 300 $bin/device --nocapture --test-threads=1
    echo "--- nvrtc_compile"
    run nvrtc_compile 120 $bin/nvrtc_compile --test-threads=1
    echo "--- unit tests: cuda:: and app::bench::"
    run "unit cuda::" 60 $bin/unit_tests cuda:: --test-threads=1
    run "unit bench" 60 $bin/unit_tests app::bench:: --test-threads=1
fi

if wants bench; then
    stage "alphanet bench v2, cuda:0 (batches $batches)"
    run "bench cuda" 180 $bin/alphanet bench --model v2 --device cuda:0 --batch "$batches" --steps 20 --end-to-end --json >"$logdir/bench_cuda.json"
    cat "$logdir/bench_cuda.json"
    stage "alphanet bench v1, v3, v2.1+v2.2+v2.3 on cuda:0 (batch 16384)"
    for m in v1 v3 v2.1,v2.2,v2.3; do
        run "bench cuda $m" 120 $bin/alphanet bench --model "$m" --device cuda:0 --batch 16384 --steps 10
    done
fi
if wants bench-cpu; then
    stage "alphanet bench v2, cpu (batches $batches)"
    run "bench cpu" 240 $bin/alphanet bench --model v2 --device cpu --batch "$batches" --steps 5 --end-to-end --json >"$logdir/bench_cpu.json"
    cat "$logdir/bench_cpu.json"
fi

if wants peer; then
    stage "PyTorch peer v2 on the same GPU (eager, torch.compile)"
    for b in ${batches//,/ }; do
        PYTHONUNBUFFERED=1 run "peer_torch batch $b" 150 python3 scripts/peer_torch.py --device cuda --batch "$b" --steps 30 --mode both --ops all
    done
fi

if wants profile; then
    stage "per-kernel GPU time, v2 at batch 16384 (ncu: 1 warm-up + 1 timed step of each bench kind)"
    if command -v ncu >/dev/null; then
        run "ncu" 150 ncu --metrics gpu__time_duration.sum --csv --print-units base \
            $bin/alphanet bench --model v2 --device cuda:0 --batch 16384 --steps 1 --warmup 1 \
            >"$logdir/ncu_v2_16384.csv" 2>"$logdir/ncu.err" &&
            python3 scripts/ncu_summary.py "$logdir/ncu_v2_16384.csv"
    else
        echo "ncu not on PATH: profile stage not run"
        failures+=("profile: ncu not found")
    fi
fi

if wants sanitize; then
    stage "compute-sanitizer over the kernel cases"
    if command -v compute-sanitizer >/dev/null; then
        for tool in memcheck racecheck; do
            echo "--- $tool"
            run "sanitizer $tool" 150 compute-sanitizer --tool "$tool" --error-exitcode 3 \
                $bin/cuda_vs_cpu_kernels --exact every_kernel_matches_its_cpu_op --test-threads=1
        done
    else
        echo "compute-sanitizer not on PATH: sanitizer stage not run"
        failures+=("sanitizer: compute-sanitizer not found")
    fi
fi

stage "summary"
if ((${#failures[@]})); then
    printf 'gpu_check FAILED: %s\n' "${failures[@]}"
    exit 1
fi
echo "gpu_check: all GPU checks passed"
