// BatchNorm, Keras semantics (docs/models.md), the CUDA twin of src/ops/batchnorm.rs: per channel over
// all R = batch × steps rows of inp [R, C]; biased variance in training; moving statistics at
// inference. eps and momentum are doubles, as on the CPU, rounded to float where the CPU does.
//   y = γ·x̂ + β, x̂ = (x − μ)/√(σ² + eps)
// Backward (training statistics):
//   dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/√(σ² + eps) · (dy − mean(dy) − x̂·mean(dy·x̂))
// The sums over rows are two-phase (src/cuda/launch/batchnorm.rs): per chunk of SPLIT_ROWS rows with one
// thread per channel (coalesced: consecutive threads read consecutive channels), then the chunks
// in order (splitk_combine, dense.cu). The training forward is column_partials → mean,
// column_partials centred → variance, then batchnorm_inference with the batch statistics.
#include "gemm.cuh"

extern "C" __global__ void batchnorm_inference(float* out, const float* inp, const float* gamma,
                                               const float* beta, const float* moving_mean,
                                               const float* moving_var, int r, int c, double eps) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)r * c) return;
    int ch = i % c;
    out[i] = (inp[i] - moving_mean[ch]) * (gamma[ch] / sqrtf(moving_var[ch] + (float)eps)) + beta[ch];
}

// Chunk z = blockIdx.y of the two backward sums: partial[z, 0, ch] = Σ dy,
// partial[z, 1, ch] = Σ dy·x̂ over the chunk's rows.
extern "C" __global__ void batchnorm_backward_partials(float* partial, const float* dout,
                                                       const float* inp, const float* mean,
                                                       const float* var, int r, int c, double eps) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    int r0 = blockIdx.y * SPLIT_ROWS, r1 = min(r, r0 + SPLIT_ROWS);
    float mu = mean[ch], inv_std = 1.0f / sqrtf(var[ch] + (float)eps);
    float sdy = 0.0f, sdyx = 0.0f;
    for (int k = r0; k < r1; k++) {
        size_t i = (size_t)k * c + ch;
        sdy += dout[i];
        sdyx += dout[i] * (inp[i] - mu) * inv_std;
    }
    partial[(size_t)blockIdx.y * 2 * c + ch] = sdy;
    partial[(size_t)blockIdx.y * 2 * c + c + ch] = sdyx;
}

// dinp += γ/√(σ² + eps)·(dy − Σdy/R − x̂·Σdy·x̂/R), sums [2C] = (Σ dy, Σ dy·x̂) over all rows.
extern "C" __global__ void batchnorm_backward_apply(float* dinp, const float* dout, const float* inp,
                                                    const float* mean, const float* var,
                                                    const float* gamma, const float* sums, int r,
                                                    int c, double eps) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)r * c) return;
    int ch = i % c;
    float mu = mean[ch], inv_std = 1.0f / sqrtf(var[ch] + (float)eps);
    // 1/R rounded once from double, as the CPU's inv_r.
    float inv_r = (float)(1.0 / (double)r), scale = gamma[ch] * inv_std;
    float mdy = sums[ch] * inv_r, mdyx = sums[c + ch] * inv_r;
    dinp[i] += scale * (dout[i] - mdy - (inp[i] - mu) * inv_std * mdyx);
}

// Keras moving statistics: m ← momentum·m + (1 − momentum)·batch statistic, with 1 − momentum
// taken in double before rounding (0.01, not 1 − 0.99f), as on the CPU.
extern "C" __global__ void batchnorm_update_moving(float* moving_mean, float* moving_var,
                                                   const float* mean, const float* var, int c,
                                                   double momentum) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    float m = (float)momentum, keep = (float)(1.0 - momentum);
    moving_mean[ch] = m * moving_mean[ch] + keep * mean[ch];
    moving_var[ch] = m * moving_var[ch] + keep * var[ch];
}

// The parameter gradients of BN(data) → recurrent layer without the layer's input gradient
// (bn_recurrent_fold in src/ops/batchnorm.rs): with N = x̂ᵀ·dZ [c, g] and q = db_local[..g],
//   dγ_c += Σ_k W[c,k]·N[c,k], dβ_c += Σ_k W[c,k]·q_k, dW[c,k] += γ_c·N[c,k] + β_c·q_k,
// and db += db_local [nb]. Thread t folds channel t (its sums over k in order, as the CPU) and
// adds element t of db_local.
extern "C" __global__ void bn_recurrent_fold(float* dgamma, float* dbeta, float* dwi, float* db,
                                             const float* nmat, const float* db_local,
                                             const float* gamma, const float* beta,
                                             const float* wi, int c, int g, int nb) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < nb) db[t] += db_local[t];
    if (t >= c) return;
    const float *w = wi + (size_t)t * g, *n = nmat + (size_t)t * g;
    float sg = dgamma[t], sb = dbeta[t], gt = gamma[t], bt = beta[t];
    for (int k = 0; k < g; k++) {
        sg += w[k] * n[k];
        sb += w[k] * db_local[k];
        dwi[(size_t)t * g + k] += gt * n[k] + bt * db_local[k];
    }
    dgamma[t] = sg;
    dbeta[t] = sb;
}
