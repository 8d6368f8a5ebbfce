// Losses (docs/models.md), the CUDA twins of src/ops/loss.rs: the same arguments in the same order,
// value and gradient in one pass; dpred is WRITTEN (a loss is the root of the backward pass).
// The CPU functions return the loss; here each block writes its partial sum to `partials` (the
// last argument) and the host adds them in block order, so the loss is bit-identical from run
// to run (no float atomics).
// Plain / weighted MSE:  L = Σ w_i (ŷ_i − y_i)² / N,  ∂L/∂ŷ_i = 2 w_i (ŷ_i − y_i) / N
// (w = 1 when w is null). Neutralized (v2.2), per date group g of n_g rows with
// S_g = [1, styles] (n_g × (K+1)), A = S_gᵀS_g + λI, λ = 1e-6·trace(S_gᵀS_g)/(K+1):
//   ŷ_res = P ŷ, P = I − S_g A⁻¹ S_gᵀ;  L = Σ w_i (ŷ_res,i − y_i)² / N;
//   ∂L/∂ŷ = P ∂L/∂ŷ_res (P is symmetric). Groups with n_g < 2(K+1) use plain MSE.
// A non-finite style exposure counts as 0, as on the CPU.
#include "common.cuh"

// MAX_STYLES (src/kernel_consts.rs): the most style factors the neutralized loss accepts.

__device__ inline float sample_weight(const float* w, int k) { return w ? w[k] : 1.0f; }

// Plain MSE over BLOCK rows per block: partials[blockIdx.x] = Σ w·e² over the block's rows.
extern "C" __global__ void mse_loss(float* dpred, const float* pred, const float* y, const float* w,
                                    int n, float* partials) {
    __shared__ float scratch[BLOCK];
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    float l = 0.0f;
    if (k < n) {
        float wk = sample_weight(w, k), e = pred[k] - y[k];
        l = wk * e * e;
        dpred[k] = 2.0f * wk * e * (1.0f / (float)n);
    }
    l = block_sum(l, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = l;
}

// Column p of S = [1, styles] at row r.
__device__ inline float style_col(const float* styles, int r, int k, int p) {
    if (p == 0) return 1.0f;
    float x = styles[(size_t)r * k + p - 1];
    return x - x == 0.0f ? x : 0.0f;  // x − x is NaN for ±inf and NaN
}

// Row r of S·c.
__device__ inline float style_dot(const float* styles, int r, int k, const float* c) {
    float s = 0.0f;
    for (int p = 0; p <= k; p++) s += style_col(styles, r, k, p) * c[p];
    return s;
}

// rhs[p] = Σ_{r in group} S[r, p]·v(r) for p ≤ k, one thread per p, rows in order.
template <typename V>
__device__ inline void style_project(float* rhs, const float* styles, int lo, int hi, int k, V v) {
    for (int p = threadIdx.x; p <= k; p += blockDim.x) {
        float s = 0.0f;
        for (int r = lo; r < hi; r++) s += style_col(styles, r, k, p) * v(r);
        rhs[p] = s;
    }
}

// One block per date group: offsets [gridDim.x + 1] delimit the groups' rows, styles is [n, k].
// partials[g] = Σ w·e² over group g's rows; partials[gridDim.x + g] = 1 when g fell back to
// plain MSE (the CPU's fallback_groups count).
extern "C" __global__ void neutralized_mse_loss(float* dpred, const float* pred, const float* y,
                                                const float* w, const float* styles,
                                                const int* offsets, int n, int k, float* partials) {
    __shared__ float scratch[BLOCK];
    __shared__ float a[(MAX_STYLES + 1) * (MAX_STYLES + 1)];
    __shared__ float beta[MAX_STYLES + 1], gamma[MAX_STYLES + 1];
    int g = blockIdx.x, lo = offsets[g], hi = offsets[g + 1], k1 = k + 1;
    int project = hi - lo >= 2 * k1;
    if (project) {
        for (int pq = threadIdx.x; pq < k1 * k1; pq += blockDim.x) {
            int p = pq / k1, q = pq % k1;
            float s = 0.0f;
            for (int r = lo; r < hi; r++) s += style_col(styles, r, k, p) * style_col(styles, r, k, q);
            a[pq] = s;
        }
        style_project(beta, styles, lo, hi, k, [&](int r) { return pred[r]; });
        __syncthreads();
        if (threadIdx.x == 0) {
            float trace = 0.0f;
            for (int p = 0; p < k1; p++) trace += a[p * k1 + p];
            for (int p = 0; p < k1; p++) a[p * k1 + p] += 1e-6f * trace / (float)k1;
            cholesky_factor(a, k1);
            cholesky_solve(a, beta, k1);
        }
        __syncthreads();
    }
    float inv_n = 1.0f / (float)n;
    // ŷ_res and ∂L/∂ŷ_res of row r; without a projection they are ŷ and the plain gradient.
    auto residual = [&](int r) { return project ? pred[r] - style_dot(styles, r, k, beta) : pred[r]; };
    auto dres = [&](int r) { return 2.0f * sample_weight(w, r) * (residual(r) - y[r]) * inv_n; };
    float l = 0.0f;
    for (int r = lo + threadIdx.x; r < hi; r += blockDim.x) {
        float e = residual(r) - y[r];
        l += sample_weight(w, r) * e * e;
    }
    l = block_sum(l, scratch);
    if (threadIdx.x == 0) {
        partials[g] = l;
        partials[gridDim.x + g] = project ? 0.0f : 1.0f;
    }
    if (project) {
        style_project(gamma, styles, lo, hi, k, dres);
        __syncthreads();
        if (threadIdx.x == 0) cholesky_solve(a, gamma, k1);
        __syncthreads();
    }
    for (int r = lo + threadIdx.x; r < hi; r += blockDim.x)
        dpred[r] = dres(r) - (project ? style_dot(styles, r, k, gamma) : 0.0f);
}
