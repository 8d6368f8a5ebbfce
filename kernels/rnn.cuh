// Building blocks of the fused recurrent kernels (docs/engine.md): a block owns RNN_SAMPLES
// (src/kernel_consts.rs) samples for all their steps, with the recurrent weights U [H, G]
// resident in shared memory. Only the recurrence runs here: the input projections and the weight
// and bias gradients are GEMMs and split-K sums over all rows (dense.cu), composed by the host.
#pragma once
#include "common.cuh"

// Copies w [n] into shared memory.
__device__ inline void rnn_load(float* dst, const float* w, int n) {
    for (int k = threadIdx.x; k < n; k += blockDim.x) dst[k] = w[k];
}

// dst[n, :] = src[(n0 + n)·s + t, :] (rows of width w) for the block's ns samples: step t's
// input-side pre-activations.
__device__ inline void rnn_stage_rows(float* dst, const float* src, int n0, int ns, int t, int s,
                                      int w) {
    for (int k = threadIdx.x; k < ns * w; k += blockDim.x) {
        int n = k / w, c = k % w;
        dst[k] = src[((size_t)(n0 + n) * s + t) * w + c];
    }
}

// z[n, j] (+)= (bias ? bias[j] : 0) + Σ_k v[n, k]·w[k, j] for j < g, n < ns. A thread owns a
// column j for all samples, so each weight is read once per block and step.
__device__ inline void rnn_project(float* z, const float* v, const float* w, const float* bias,
                                   int ns, int in, int g, int accumulate) {
    for (int j = threadIdx.x; j < g; j += blockDim.x) {
        float acc[RNN_SAMPLES];
        for (int n = 0; n < RNN_SAMPLES; n++)
            acc[n] = accumulate && n < ns ? z[n * g + j] : (bias ? bias[j] : 0.0f);
        for (int k = 0; k < in; k++) {
            float wk = w[(size_t)k * g + j];
            for (int n = 0; n < RNN_SAMPLES; n++)
                if (n < ns) acc[n] += v[n * in + k] * wk;
        }
        for (int n = 0; n < ns; n++) z[n * g + j] = acc[n];
    }
}

// out[n·ld + k] (+)= Σ_j dz[n, j]·w[k, j] for k < rows: a gradient back through z = v·w.
__device__ inline void rnn_project_back(float* out, int ld, const float* dz, const float* w,
                                        int ns, int rows, int g, int accumulate) {
    for (int nk = threadIdx.x; nk < ns * rows; nk += blockDim.x) {
        int n = nk / rows, k = nk % rows;
        float s = 0.0f;
        for (int j = 0; j < g; j++) s += dz[n * g + j] * w[(size_t)k * g + j];
        float* o = out + (size_t)n * ld + k;
        *o = (accumulate ? *o : 0.0f) + s;
    }
}
