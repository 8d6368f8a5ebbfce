#!/usr/bin/env bash
# Shows that the CPU-vs-CUDA suite (every cuda_vs_cpu_* test binary: tests/cuda_vs_cpu_kernels/,
# tests/cuda_vs_cpu_training.rs) fails for a wrong kernel: copies the repository to a temporary
# directory, injects each fault of the list below into kernels/ one at a time (a removed
# __syncthreads, an off-by-one index, a flipped sign in one backward term, a missing degenerate
# case, …), runs the suite, and prints for each mutant whether the suite caught it. Exits
# non-zero if any mutant survives, if a mutation no longer applies (its text is not found exactly
# once: the kernel was rewritten, so the list needs updating), or if the unmutated suite fails.
#
# Usage: scripts/kernel_mutants.sh [--check] [NAME_FILTER]
#   --check              only check that every mutation still applies to kernels/ (no build):
#                        run it after changing a kernel
#   NAME_FILTER          run only the mutants whose name contains it
#   CARGO_TARGET_DIR     the target directory, shared by every mutant so that only the kernels,
#                        the crate and the test rebuild (default: this repository's target/)
#   ALPHANET_CUDA        the driver the suite runs on (default: emulator, the CPU stand-in, whose
#                        guard pages and barrier checks catch faults a GPU may hide; set it to
#                        "real" to use a GPU)
#   MUTANT_TIMEOUT       seconds allowed per suite run (default 1200); a mutant that makes the
#                        suite run longer is reported as caught by a hang
#   ALPHANET_EMULATOR_ORDER_CHECK=1  run every launch twice, forward and reversed (slower)
#   MUTANT_TEST          run only the suite's tests whose name contains it, to show that one
#                        check catches a fault (e.g. MUTANT_TEST=training_steps_of_every_model_match_cpu:
#                        the training comparison, which no kernel case runs before)
#
# Each mutant first runs every_kernel_matches_its_cpu_op alone (in cuda_vs_cpu_kernels: every
# kernel, ~1 s on the stand-in) and, only if that passes, the whole suite: a failure of either is
# a failure of the suite, and most faults are caught by the first.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
check_only=0
if [ "${1:-}" = --check ]; then
    check_only=1
    shift
fi
filter=${1:-}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
case "${ALPHANET_CUDA:-emulator}" in
    real) unset ALPHANET_CUDA ;;
    *) export ALPHANET_CUDA=${ALPHANET_CUDA:-emulator} ;;
esac
timeout_s=${MUTANT_TIMEOUT:-1200}
# A mutant changes only the kernels, which the crate embeds (kernels.rs in OUT_DIR): with
# incremental compilation the crate's rebuild redoes little more than that code unit.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-1}

# ---- the mutants: name, file, text, replacement (the text must occur exactly once) ----------
names=() files=() froms=() tos=()
add() { names+=("$1"); files+=("$2"); froms+=("$3"); tos+=("$4"); }

# The feature layer (kernels/ts_ops.cuh, kernels/ts_features.cu).
add "corr backward: sign of the own-series term" kernels/ts_ops.cuh \
    'gx[k] += partner * yc[k] - own * xc[k];' \
    'gx[k] += partner * yc[k] + own * xc[k];'
add "corr forward divides by sqrt(Sxx*Syy), which overflows f32 at volume scale" kernels/ts_ops.cuh \
    'return cxy / (sx.norm * sy.norm);' \
    'return cxy / sqrtf(sx.ss * sy.ss);'
add "corr backward: no degenerate-window test (0/0 on a flat window)" kernels/ts_ops.cuh \
    $'    if (win_flat(sx, d) || win_flat(sy, d)) return;\n    float den' \
    $'    float den'
add "cov backward: divides by d instead of d - 1" kernels/ts_ops.cuh \
    'float a = g / (float)(d - 1);' \
    'float a = g / (float)d;'
add "stddev backward: sign" kernels/ts_ops.cuh \
    'gx[k] += g * xc[k] / ((float)d * sd);' \
    'gx[k] -= g * xc[k] / ((float)d * sd);'
add "zscore backward: sign of the variance term" kernels/ts_ops.cuh \
    '(1.0f - z * xc[k] / sd)' \
    '(1.0f + z * xc[k] / sd)'
add "zscore forward: no degenerate-window test" kernels/ts_ops.cuh \
    'case OP_ZSCORE: return win_flat(st, d) ? 0.0f : st.mean / win_stddev(st, d);' \
    'case OP_ZSCORE: return st.mean / win_stddev(st, d);'
add "return backward: sign of the x_1 term" kernels/ts_ops.cuh \
    'gx[0] -= g * x[d - 1] / (x[0] * x[0]);' \
    'gx[0] += g * x[d - 1] / (x[0] * x[0]);'
add "return forward: no x_1 = 0 test" kernels/ts_ops.cuh \
    'case OP_RETURN: return x[0] == 0.0f ? 0.0f : x[d - 1] / x[0] - 1.0f;' \
    'case OP_RETURN: return x[d - 1] / x[0] - 1.0f;'
add "return backward: no x_1 = 0 test" kernels/ts_ops.cuh \
    $'            if (x[0] == 0.0f) return;\n            gx[d - 1] += g / x[0];' \
    $'            gx[d - 1] += g / x[0];'
add "decaylinear: weights off by one day" kernels/ts_ops.cuh \
    'return (float)(k + 1) / (0.5f * (float)d * (float)(d + 1));' \
    'return (float)k / (0.5f * (float)d * (float)(d + 1));'
add "mean backward: off by one (skips the first day)" kernels/ts_ops.cuh \
    'for (int k = 0; k < d; k++) gx[k] += g / (float)d;' \
    'for (int k = 1; k < d; k++) gx[k] += g / (float)d;'
add "ts_features: no __syncthreads after loading the picture" kernels/ts_features.cu \
    $'l.pic[k] = x[k];\n    __syncthreads();' \
    'l.pic[k] = x[k];'
add "ts_features backward: no __syncthreads before summing the windows" kernels/ts_features.cu \
    $'    __syncthreads();\n    float* dx = dinp' \
    '    float* dx = dinp'
add "ts_features backward: off by one in the overlapping-window sum" kernels/ts_features.cu \
    'if (o >= 0 && o < l.d) s +=' \
    'if (o >= 0 && o <= l.d) s +='

# Reductions, BatchNorm, GEMM (kernels/common.cuh, batchnorm.cu, gemm.cuh).
add "block_sum: no __syncthreads between tree levels" kernels/common.cuh \
    $'if ((int)threadIdx.x < w) scratch[threadIdx.x] += scratch[threadIdx.x + w];\n        __syncthreads();' \
    'if ((int)threadIdx.x < w) scratch[threadIdx.x] += scratch[threadIdx.x + w];'
add "batchnorm backward: sign of the x-hat term" kernels/batchnorm.cu \
    '- (inp[i] - mu) * inv_std * mdyx);' \
    '+ (inp[i] - mu) * inv_std * mdyx);'
add "column sums: BN variance centred at -mean instead of the mean" kernels/dense.cu \
    'float e = a[(size_t)r * lda + col] - mu;' \
    'float e = a[(size_t)r * lda + col] + mu;'
add "batchnorm: moving variance not updated" kernels/batchnorm.cu \
    'moving_var[ch] = m * moving_var[ch] + keep * var[ch];' \
    'moving_var[ch] = m * moving_var[ch] + keep * moving_var[ch];'
add "gemm: no second __syncthreads (next tile overwrites the one in use)" kernels/gemm.cuh \
    $'acc[a][b] += av[a] * bv[b];\n        }\n        __syncthreads();' \
    $'acc[a][b] += av[a] * bv[b];\n        }'
add "gemm: off by one in the K bound of the A tile" kernels/gemm.cuh \
    'As[kk][mm] = (m < M && k < k1)' \
    'As[kk][mm] = (m < M && k <= k1)'

# Recurrent layers (kernels/common.cuh cells, rnn.cuh, lstm.cu, gru.cu).
add "LSTM cell backward: sign of the forget-gate gradient" kernels/common.cuh \
    '*dzf = dc * c_prev * gf * (1.0f - gf);' \
    '*dzf = -dc * c_prev * gf * (1.0f - gf);'
add "LSTM cell backward: c_{t-1} gradient without the forget gate" kernels/common.cuh \
    'return dc * gf;' \
    'return dc;'
add "LSTM backward: off by one in the step of c_{t-1}" kernels/lstm.cu \
    'float c_prev = t > 0 ? prev[4 * h] : 0.0f;' \
    'float c_prev = t > 1 ? prev[4 * h] : 0.0f;'
add "LSTM forward: no __syncthreads after staging the input-side rows" kernels/lstm.cu \
    $'rnn_stage_rows(z, zx, n0, ns, t, s, g);\n        __syncthreads();\n        rnn_project(z, hs, u, 0, ns, h, g, 1);' \
    $'rnn_stage_rows(z, zx, n0, ns, t, s, g);\n        rnn_project(z, hs, u, 0, ns, h, g, 1);'
add "GRU cell backward: sign of the reset-gate gradient" kernels/common.cuh \
    '*dxr = dhh * rh * r * (1.0f - r);' \
    '*dxr = -dhh * rh * r * (1.0f - r);'
add "GRU backward: h_{t-1} read from the wrong cache slot" kernels/gru.cu \
    'float h_prev = t > 0 ? (cr - 5 * h)[4 * h] : 0.0f;' \
    'float h_prev = t > 0 ? (cr - 5 * h)[2 * h] : 0.0f;'
add "recurrent backward: off by one in the gate sum of the projection" kernels/rnn.cuh \
    'for (int j = 0; j < g; j++) s += dz[n * g + j]' \
    'for (int j = 1; j < g; j++) s += dz[n * g + j]'

# Losses, Adam, pooling, element-wise (kernels/loss.cu, common.cuh, pooling.cu, elementwise.cu).
add "neutralized loss: dpred without its style projection" kernels/loss.cu \
    'dpred[r] = dres(r) - (project ? style_dot(styles, r, k, gamma) : 0.0f);' \
    'dpred[r] = dres(r);'
add "neutralized loss: sign of the projection in dpred" kernels/loss.cu \
    'dpred[r] = dres(r) - (project ? style_dot(styles, r, k, gamma) : 0.0f);' \
    'dpred[r] = dres(r) + (project ? style_dot(styles, r, k, gamma) : 0.0f);'
add "mse loss: divides by n - 1" kernels/loss.cu \
    'dpred[k] = 2.0f * wk * e * (1.0f / (float)n);' \
    'dpred[k] = 2.0f * wk * e * (1.0f / (float)(n - 1));'
add "Adam: update with the wrong sign" kernels/common.cuh \
    '*p -= lr_t * *m / (sqrtf(*v) + eps);' \
    '*p += lr_t * *m / (sqrtf(*v) + eps);'
add "pool backward: off by one in the mean's window" kernels/pooling.cu \
    'for (int t = 0; t < window; t++) dxw[t * channels] += dy[0] / (float)window;' \
    'for (int t = 1; t < window; t++) dxw[t * channels] += dy[0] / (float)window;'
add "dropout backward: mask ignored" kernels/elementwise.cu \
    'dinp[k] += dout[k] * mask[k];' \
    'dinp[k] += dout[k];'
add "concat forward: column offset ignored" kernels/elementwise.cu \
    'out[(k / width) * (size_t)total + col + k % width] = inp[k];' \
    'out[(k / width) * (size_t)total + k % width] = inp[k];'
add "concat backward: overwrites instead of accumulating" kernels/elementwise.cu \
    'dinp[k] += dout[(k / width) * (size_t)total + col + k % width];' \
    'dinp[k] = dout[(k / width) * (size_t)total + col + k % width];'
add "bn_recurrent_fold: dβ from N instead of the bias gradient q" kernels/batchnorm.cu \
    'sb += w[k] * db_local[k];' \
    'sb += w[k] * n[k];'
add "bn_recurrent_fold: the recurrent bias (past g) not added" kernels/batchnorm.cu \
    'if (t < nb) db[t] += db_local[t];' \
    'if (t < g) db[t] += db_local[t];'

# Input normalisation (kernels/normalize.cu).
add "normalize: window sum not divided by the days" kernels/normalize.cu \
    'scale = sum / (float)PICTURE_DAYS;' \
    'scale = sum;'
add "normalize: scaled by the second-to-last close" kernels/normalize.cu \
    'scale = pic[CLOSE_FEATURE * PICTURE_DAYS + PICTURE_DAYS - 1];' \
    'scale = pic[CLOSE_FEATURE * PICTURE_DAYS + PICTURE_DAYS - 2];'

# ---- the run --------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/kernel_mutants.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'echo "kernel_mutants.sh: stopped by a signal" >&2; exit 130' INT TERM
trap 'echo "kernel_mutants.sh: line $LINENO failed" >&2' ERR
# Tracked and untracked-not-ignored files: the working tree as it is, without build outputs.
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$root" && tar --null -T - -cf -) | (cd "$work" && tar -xf -)
cp -r "$work/kernels" "$work/kernels.pristine"

restore() {
    rm -rf "$work/kernels"
    cp -r "$work/kernels.pristine" "$work/kernels"
}

# Replaces the one occurrence of $2 by $3 in file $1; fails unless there is exactly one.
mutate() {
    FROM=$2 TO=$3 perl -0777 -i -pe '
        my $n = () = /\Q$ENV{FROM}\E/g;
        die "found $n times\n" unless $n == 1;
        s/\Q$ENV{FROM}\E/$ENV{TO}/;
    ' "$1"
}

if [ "$check_only" = 1 ]; then
    bad=0
    for i in "${!names[@]}"; do
        restore
        if err=$(mutate "$work/${files[$i]}" "${froms[$i]}" "${tos[$i]}" 2>&1); then
            echo "applies   ${names[$i]}"
        else
            echo "STALE     ${names[$i]} (${files[$i]}: the text to mutate is $err)"
            bad=$((bad + 1))
        fi
    done
    echo "== ${#names[@]} mutants, $bad stale"
    exit $((bad > 0))
fi
echo "kernel mutants: $work, target $CARGO_TARGET_DIR, driver ${ALPHANET_CUDA:-real}"

# Builds and runs the suite in $work; sets $verdict to pass, fail (a test failed), hang or
# build (the mutant does not compile, which counts as caught by the build).
run_suite() {
    local log=$1
    if ! (cd "$work" && cargo test --release --test 'cuda_vs_cpu_*' --no-run) >"$log" 2>&1; then
        verdict=build
        return
    fi
    local rc=0
    local runs=("every_kernel_matches_its_cpu_op" "")
    [ -n "${MUTANT_TEST:-}" ] && runs=("$MUTANT_TEST")
    for args in "${runs[@]}"; do
        rc=0
        # shellcheck disable=SC2086
        (cd "$work" && timeout "$timeout_s" cargo test --release --test 'cuda_vs_cpu_*' -- $args) \
            >>"$log" 2>&1 || rc=$?
        [ "$rc" -ne 0 ] && break
    done
    case $rc in
        0) verdict=pass ;;
        124) verdict=hang ;;
        *) verdict=fail ;;
    esac
}

start=$(date +%s)
echo "== baseline (no mutation): the suite must pass"
run_suite "$work/baseline.log"
if [ "$verdict" != pass ]; then
    tail -40 "$work/baseline.log"
    echo "kernel mutants: the unmutated suite does not pass ($verdict); nothing to show" >&2
    exit 1
fi

survived=0 stale=0 ran=0
results=()
for i in "${!names[@]}"; do
    name=${names[$i]}
    [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
    ran=$((ran + 1))
    restore
    t0=$(date +%s)
    if ! err=$(mutate "$work/${files[$i]}" "${froms[$i]}" "${tos[$i]}" 2>&1); then
        line="STALE     $name (${files[$i]}: the text to mutate is $err)"
        stale=$((stale + 1))
    else
        log="$work/mutant_$i.log"
        run_suite "$log"
        secs=$(($(date +%s) - t0))
        # The first failing comparison or stand-in report, to show what caught it.
        why=$(grep -m1 -E '\| .*FAIL|alphanet CUDA emulator:|panicked at|^error' "$log" |
            cut -c1-150 || true)
        case $verdict in
            pass)
                line="SURVIVED  $name (${secs}s)"
                survived=$((survived + 1))
                mkdir -p "$CARGO_TARGET_DIR/kernel_mutants"
                cp "$log" "$CARGO_TARGET_DIR/kernel_mutants/survived_$i.log"
                ;;
            hang) line="caught    $name (${secs}s): the suite hung past ${timeout_s}s" ;;
            build) line="caught    $name (${secs}s): does not compile" ;;
            *) line="caught    $name (${secs}s): $why" ;;
        esac
    fi
    echo "$line"
    results+=("$line")
done
restore

echo
echo "== kernel mutants: $ran run, $((ran - survived - stale)) caught, $survived survived, $stale stale, $(($(date +%s) - start))s"
printf '%s\n' "${results[@]}"
[ "$survived" -eq 0 ] && [ "$stale" -eq 0 ]
