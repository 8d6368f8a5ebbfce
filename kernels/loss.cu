// Losses (SPEC §5), value and gradient in one pass; the gradient accumulates into dpred.
// Plain / weighted MSE:  L = Σ w_i (ŷ_i − y_i)² / N,  ∂L/∂ŷ_i = 2 w_i (ŷ_i − y_i) / N
// (w = 1 when weight is null). Neutralized (v2.2), per date group g of n_g rows with
// S_g = [1, styles] (n_g × (K+1)), A = S_gᵀS_g + λI, λ = 1e-6·trace(S_gᵀS_g)/(K+1):
//   ŷ_res = P ŷ, P = I − S_g A⁻¹ S_gᵀ;  L = Σ w_i (ŷ_res,i − y_i)² / N;
//   ∂L/∂ŷ = P ∂L/∂ŷ_res (P is symmetric). Groups with n_g < 2(K+1) use plain MSE.
// Each block writes its partial loss to partials[blockIdx.x]; loss_sum then adds the partials
// in block order, so the loss is bit-identical from run to run (no float atomics).
#include "common.cuh"

// Most style factors the neutralized loss accepts (K ≤ MAX_STYLES).
#define MAX_STYLES 15

__device__ inline float sample_weight(const float* weight, int k) { return weight ? weight[k] : 1.0f; }

// Plain MSE over BLOCK rows per block.
extern "C" __global__ void mse_loss_partial(float* partials, float* dpred, const float* pred,
                                            const float* target, const float* weight, int n) {
    __shared__ float scratch[BLOCK];
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    float l = 0.0f;
    if (k < n) {
        float w = sample_weight(weight, k), e = pred[k] - target[k];
        l = w * e * e;
        dpred[k] += 2.0f * w * e / (float)n;
    }
    l = block_sum(l, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = l / (float)n;
}

// Row r of S_g·c: c[0] + Σ_p styles[r, p]·c[p + 1].
__device__ inline float style_dot(const float* styles, int r, int k, const float* c) {
    float s = c[0];
    for (int p = 0; p < k; p++) s += styles[(size_t)r * k + p] * c[p + 1];
    return s;
}

// rhs[p] = Σ_{r in group} S[r, p]·v(r) for p ≤ k, one thread per p, rows in order.
template <typename V>
__device__ inline void style_project(float* rhs, const float* styles, int lo, int hi, int k, V v) {
    for (int p = threadIdx.x; p <= k; p += blockDim.x) {
        float s = 0.0f;
        for (int r = lo; r < hi; r++) s += (p == 0 ? 1.0f : styles[(size_t)r * k + p - 1]) * v(r);
        rhs[p] = s;
    }
}

// One block per group; offsets [n_groups + 1] delimit the groups' rows, styles is [n, k].
extern "C" __global__ void mse_neutral_loss_partial(float* partials, float* dpred, const float* pred,
                                                    const float* target, const float* weight,
                                                    const float* styles, const int* offsets,
                                                    int n_groups, int n, int k) {
    __shared__ float scratch[BLOCK];
    __shared__ float a[(MAX_STYLES + 1) * (MAX_STYLES + 1)];
    __shared__ float beta[MAX_STYLES + 1], gamma[MAX_STYLES + 1];
    __shared__ int solved;
    int g = blockIdx.x;
    if (g >= n_groups) return;
    int lo = offsets[g], hi = offsets[g + 1], k1 = k + 1;
    int project = hi - lo >= 2 * k1;
    if (project) {
        for (int pq = threadIdx.x; pq < k1 * k1; pq += blockDim.x) {
            int p = pq / k1, q = pq % k1;
            float s = 0.0f;
            for (int r = lo; r < hi; r++)
                s += (p == 0 ? 1.0f : styles[(size_t)r * k + p - 1]) *
                     (q == 0 ? 1.0f : styles[(size_t)r * k + q - 1]);
            a[pq] = s;
        }
        style_project(beta, styles, lo, hi, k, [&](int r) { return pred[r]; });
        __syncthreads();
        if (threadIdx.x == 0) {
            float trace = 0.0f;
            for (int p = 0; p < k1; p++) trace += a[p * k1 + p];
            for (int p = 0; p < k1; p++) a[p * k1 + p] += 1e-6f * trace / (float)k1;
            solved = cholesky_factor(a, k1);
            if (solved) cholesky_solve(a, beta, k1);
        }
        __syncthreads();
        project = solved;
    }
    // ŷ_res and ∂L/∂ŷ_res of row r; without a projection they are ŷ and the plain gradient.
    auto residual = [&](int r) { return project ? pred[r] - style_dot(styles, r, k, beta) : pred[r]; };
    auto dres = [&](int r) {
        return 2.0f * sample_weight(weight, r) * (residual(r) - target[r]) / (float)n;
    };
    float l = 0.0f;
    for (int r = lo + threadIdx.x; r < hi; r += blockDim.x) {
        float e = residual(r) - target[r];
        l += sample_weight(weight, r) * e * e;
    }
    l = block_sum(l, scratch);
    if (threadIdx.x == 0) partials[g] = l / (float)n;
    if (project) {
        style_project(gamma, styles, lo, hi, k, dres);
        __syncthreads();
        if (threadIdx.x == 0) cholesky_solve(a, gamma, k1);
        __syncthreads();
    }
    for (int r = lo + threadIdx.x; r < hi; r += blockDim.x)
        dpred[r] += dres(r) - (project ? style_dot(styles, r, k, gamma) : 0.0f);
}

// loss[0] = Σ partials[0..m) in a fixed order (strided per thread, then block_sum).
extern "C" __global__ void loss_sum(float* loss, const float* partials, int m) {
    __shared__ float scratch[BLOCK];
    float s = 0.0f;
    for (int k = threadIdx.x; k < m; k += blockDim.x) s += partials[k];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) loss[0] = s;
}
