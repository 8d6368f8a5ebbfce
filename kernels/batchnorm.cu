// BatchNorm, Keras semantics (docs/models.md), the CUDA twin of src/ops/batchnorm.rs: per channel over
// all R = batch × steps rows of inp [R, C]; biased variance in training; moving statistics at
// inference. eps and momentum are doubles, as on the CPU, rounded to float where the CPU does.
//   y = γ·x̂ + β, x̂ = (x − μ)/√(σ² + eps)
// Backward (training statistics):
//   dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/√(σ² + eps) · (dy − mean(dy) − x̂·mean(dy·x̂))
// One block of BLOCK threads per channel; every sum over rows is a fixed-order block_sum, so
// the statistics are bit-identical from run to run.
#include "common.cuh"

extern "C" __global__ void batchnorm_forward(float* out, float* mean, float* var, const float* inp,
                                             const float* gamma, const float* beta, int r, int c,
                                             double eps) {
    __shared__ float scratch[BLOCK];
    int ch = blockIdx.x;
    if (ch >= c) return;
    float s = 0.0f;
    for (int k = threadIdx.x; k < r; k += blockDim.x) s += inp[(size_t)k * c + ch];
    float mu = block_sum(s, scratch) / (float)r;
    s = 0.0f;
    for (int k = threadIdx.x; k < r; k += blockDim.x) {
        float e = inp[(size_t)k * c + ch] - mu;
        s += e * e;
    }
    float v = block_sum(s, scratch) / (float)r;
    if (threadIdx.x == 0) {
        mean[ch] = mu;
        var[ch] = v;
    }
    float scale = gamma[ch] / sqrtf(v + (float)eps);
    for (int k = threadIdx.x; k < r; k += blockDim.x) {
        size_t i = (size_t)k * c + ch;
        out[i] = (inp[i] - mu) * scale + beta[ch];
    }
}

extern "C" __global__ void batchnorm_inference(float* out, const float* inp, const float* gamma,
                                               const float* beta, const float* moving_mean,
                                               const float* moving_var, int r, int c, double eps) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)r * c) return;
    int ch = i % c;
    out[i] = (inp[i] - moving_mean[ch]) * (gamma[ch] / sqrtf(moving_var[ch] + (float)eps)) + beta[ch];
}

extern "C" __global__ void batchnorm_backward(float* dinp, float* dgamma, float* dbeta,
                                              const float* dout, const float* inp, const float* mean,
                                              const float* var, const float* gamma, int r, int c,
                                              double eps) {
    __shared__ float scratch[BLOCK];
    int ch = blockIdx.x;
    if (ch >= c) return;
    float mu = mean[ch], inv_std = 1.0f / sqrtf(var[ch] + (float)eps);
    float sdy = 0.0f, sdyx = 0.0f;
    for (int k = threadIdx.x; k < r; k += blockDim.x) {
        size_t i = (size_t)k * c + ch;
        sdy += dout[i];
        sdyx += dout[i] * (inp[i] - mu) * inv_std;
    }
    sdy = block_sum(sdy, scratch);
    sdyx = block_sum(sdyx, scratch);
    if (threadIdx.x == 0) {
        dbeta[ch] += sdy;
        dgamma[ch] += sdyx;
    }
    float mdy = sdy / (float)r, mdyx = sdyx / (float)r, scale = gamma[ch] * inv_std;
    for (int k = threadIdx.x; k < r; k += blockDim.x) {
        size_t i = (size_t)k * c + ch;
        dinp[i] += scale * (dout[i] - mdy - (inp[i] - mu) * inv_std * mdyx);
    }
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
