// Element-wise ops: the activations (ReLU, tanh), inverted dropout, concatenation along columns, the Adam update, the L2 term and the on-device
// gather of data pictures from the panel. One thread per element, except l2_penalty.
#include "common.cuh"

#define ELEMENT_INDEX()                                             \
    size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;       \
    if (k >= (size_t)n) return;

// The activations (ops::elementwise::Activation, codes in kernel_consts.rs): y = f(x), and
// dx += dy·f'(x) given y. ACT_RELU: max(x, 0), f' = [x > 0] (dy added, or nothing, as on the
// CPU); ACT_TANH: tanh x, f' = 1 − y².
__device__ __forceinline__ float activate(int act, float x) {
    switch (act) {
        case ACT_TANH: return tanhf(x);
        default: return x > 0.0f ? x : 0.0f;
    }
}

__device__ __forceinline__ void accumulate_grad(int act, float* d, float dy, float x, float y) {
    switch (act) {
        case ACT_TANH: *d += dy * (1.0f - y * y); break;
        default:
            if (x > 0.0f) *d += dy;
    }
}

extern "C" __global__ void activation_forward(int act, float* out, const float* inp, int n) {
    ELEMENT_INDEX();
    out[k] = activate(act, inp[k]);
}

extern "C" __global__ void activation_backward(int act, float* dinp, const float* dout, const float* inp,
                                               const float* out, int n) {
    ELEMENT_INDEX();
    accumulate_grad(act, &dinp[k], dout[k], inp[k], out[k]);
}

// y = x·mask, mask = dropout_mask(seed, k, p) ∈ {0, 1/(1−p)}; dx += dy·mask.
extern "C" __global__ void dropout_forward(float* out, float* mask, const float* inp, int n, double p,
                                           unsigned long long seed) {
    ELEMENT_INDEX();
    float m = dropout_mask(seed, k, p);
    mask[k] = m;
    out[k] = inp[k] * m;
}

extern "C" __global__ void dropout_backward(float* dinp, const float* dout, const float* mask, int n) {
    ELEMENT_INDEX();
    dinp[k] += dout[k] * mask[k];
}

// out[r][col + j] = inp[r][j] for a [rows, width] input of a [rows, total] concatenation;
// dinp[r][j] += dout[r][col + j].
extern "C" __global__ void concat_forward(float* out, const float* inp, int rows, int width,
                                          int total, int col) {
    int n = rows * width;
    ELEMENT_INDEX();
    out[(k / width) * (size_t)total + col + k % width] = inp[k];
}

extern "C" __global__ void concat_backward(float* dinp, const float* dout, int rows, int width,
                                           int total, int col) {
    int n = rows * width;
    ELEMENT_INDEX();
    dinp[k] += dout[(k / width) * (size_t)total + col + k % width];
}

extern "C" __global__ void adam_update(float* params, float* m, float* v, const float* grad, int n,
                                       float lr_t, float beta1, float beta2, float eps) {
    ELEMENT_INDEX();
    adam_element(params + k, m + k, v + k, grad[k], lr_t, beta1, beta2, eps);
}

// out[b][f][k] = features[(t − 29 + k)·N·15 + i·15 + f] for sample b = (date t, stock i), the
// CUDA twin of src/data/samples.rs gather_pictures: the panel (features [T, N, 15], n_stocks),
// the samples as b (t, i) pairs, the pictures [B, 15, 30]. Pictures are cut from the panel
// tensor already on the device.
extern "C" __global__ void gather_pictures(const float* features, int n_stocks,
                                           const unsigned* samples, int b, float* out) {
    int n = b * PICTURE_FEATURES * PICTURE_DAYS;
    ELEMENT_INDEX();
    int s = k / (PICTURE_FEATURES * PICTURE_DAYS), r = k % (PICTURE_FEATURES * PICTURE_DAYS);
    int f = r / PICTURE_DAYS, day = r % PICTURE_DAYS;
    size_t t = (size_t)samples[2 * s] + 1 - PICTURE_DAYS + day, i = samples[2 * s + 1];
    out[k] = features[(t * n_stocks + i) * PICTURE_FEATURES + f];
}

// The L2 term of one tensor θ [n] with weight l2: grad += coef·θ (coef = 2·l2, rounded to float
// as on the CPU) and sumsq[0] = Σ θ², summed in a fixed-order block tree (one block of BLOCK
// threads), from which the host forms l2·Σ θ² without downloading θ.
extern "C" __global__ void l2_penalty(float* grad, float* sumsq, const float* theta, int n,
                                      float coef) {
    __shared__ float scratch[BLOCK];
    float s = 0.0f;
    for (int k = threadIdx.x; k < n; k += blockDim.x) {
        float t = theta[k];
        s += t * t;
        grad[k] += coef * t;
    }
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) sumsq[0] = s;
}
