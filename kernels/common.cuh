// Shared by every kernel file, and compiled for the host too (build.rs builds a C++ shim from
// the .cuh files so tests/kernel_host_maths.rs can check the per-thread maths on the CPU).
// No system headers on the device side: NVRTC has none, and the kernels need none.
#pragma once

#ifndef __CUDACC__
#include <math.h>
#define __host__
#define __device__
#endif

#define HD __host__ __device__ inline

// The constants Rust and CUDA share (PICTURE_FEATURES, PICTURE_DAYS, BLOCK, GEMM_TILE, …), generated
// by build.rs from their one definition in src/kernel_consts.rs.
#include "kernel_consts.cuh"

// ---------------------------------------------------------------------------------------------
// Dropout hash: the keep decision of element k is a pure function of (seed, k), so the CPU
// reference and the GPU draw the same mask and a rerun is bit-identical.

// splitmix64 as a hash: one step of the generator started at x.
HD unsigned long long splitmix64(unsigned long long x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// u = top 53 bits of splitmix64(seed ^ k·φ) / 2^53 ∈ [0, 1): `dropout_uniform` of
// src/ops/elementwise.rs, bit for bit.
HD double dropout_uniform(unsigned long long seed, unsigned long long k) {
    unsigned long long bits = splitmix64(seed ^ (k * 0x9E3779B97F4A7C15ull)) >> 11;
    return (double)bits * (1.0 / 9007199254740992.0);
}

// The inverted-dropout mask of element k: 1/(1−p) when u ≥ p (kept), else 0. p is a double and
// 1/(1−p) is rounded once to float, as on the CPU, so both draw the same mask to the bit.
HD float dropout_mask(unsigned long long seed, unsigned long long k, double p) {
    return dropout_uniform(seed, k) >= p ? (float)(1.0 / (1.0 - p)) : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// Adam, one element: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², p −= lr_t·m/(√v + eps).
// lr_t carries the bias correction lr·√(1−β2ᵗ)/(1−β1ᵗ), computed once on the host.
HD void adam_element(float* p, float* m, float* v, float g, float lr_t, float beta1, float beta2,
                     float eps) {
    *m = beta1 * *m + (1.0f - beta1) * g;
    *v = beta2 * *v + (1.0f - beta2) * g * g;
    *p -= lr_t * *m / (sqrtf(*v) + eps);
}

// ---------------------------------------------------------------------------------------------
// Gate maths for one recurrent unit.

HD float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// LSTM cell (Keras gates i, f, c, o): from pre-activations z to the seven values the CPU
// reference caches per unit (src/ops/lstm.rs): activated gates, c_t, tanh(c_t), h_t.
HD void lstm_cell_forward(float zi, float zf, float zc, float zo, float c_prev, float* gi,
                          float* gf, float* gc, float* go, float* c, float* tc, float* h) {
    *gi = sigmoidf(zi);
    *gf = sigmoidf(zf);
    *gc = tanhf(zc);
    *go = sigmoidf(zo);
    *c = *gf * c_prev + *gi * *gc;
    *tc = tanhf(*c);
    *h = *go * *tc;
}

// LSTM cell backward. tc: the cached tanh(c_t); dh: gradient of h_t; dc: gradient of c_t from
// the step above. Writes the gradients of the four pre-activations and returns the gradient
// carried to c_{t−1}:
//   dc_t += dh·o·(1 − tanh²c);  dz_i = dc·g·i(1−i), dz_f = dc·c_{t−1}·f(1−f),
//   dz_c = dc·i·(1−g²),  dz_o = dh·tanh(c)·o(1−o);  dc_{t−1} = dc·f.
HD float lstm_cell_backward(float gi, float gf, float gc, float go, float tc, float c_prev,
                            float dh, float dc, float* dzi, float* dzf, float* dzc, float* dzo) {
    dc += dh * go * (1.0f - tc * tc);
    *dzi = dc * gc * gi * (1.0f - gi);
    *dzf = dc * c_prev * gf * (1.0f - gf);
    *dzc = dc * gi * (1.0f - gc * gc);
    *dzo = dh * tc * go * (1.0f - go);
    return dc * gf;
}

// GRU cell, Keras reset_after: xz/xr/xh = x·W + b_ih per gate, rz/rr/rh = h·U + b_hh per gate.
//   z = σ(xz + rz), r = σ(xr + rr), ĥ = tanh(xh + r·rh), h' = z·h + (1 − z)·ĥ.
HD void gru_cell_forward(float xz, float xr, float xh, float rz, float rr, float rh, float h_prev,
                         float* z, float* r, float* hh, float* h) {
    *z = sigmoidf(xz + rz);
    *r = sigmoidf(xr + rr);
    *hh = tanhf(xh + *r * rh);
    *h = *z * h_prev + (1.0f - *z) * *hh;
}

// GRU cell backward from dh = ∂L/∂h'. Writes the gradients of the input-side pre-activations
// (dxz, dxr, dxh), of the recurrent ones (drz = dxz, drr = dxr, drh = dxh·r) and returns the
// direct part of ∂L/∂h_prev (dh·z; the part through U is added by the caller).
HD float gru_cell_backward(float z, float r, float hh, float rh, float h_prev, float dh,
                           float* dxz, float* dxr, float* dxh, float* drh) {
    float dhh = dh * (1.0f - z) * (1.0f - hh * hh);
    *dxz = dh * (h_prev - hh) * z * (1.0f - z);
    *dxr = dhh * rh * r * (1.0f - r);
    *dxh = dhh;
    *drh = dhh * r;
    return dh * z;
}

// ---------------------------------------------------------------------------------------------
// Small symmetric positive definite solves (the v2.2 normal equations, n = K+1 ≤ 16).

// In-place Cholesky A = L·Lᵀ of the row-major n×n matrix a; L is left in the lower triangle.
// A pivot that is not positive (rounding on a near-singular A) is clamped to the smallest
// normal float, as the CPU reference (src/ops/loss.rs cholesky_solve) does, so both always solve.
HD void cholesky_factor(float* a, int n) {
    for (int j = 0; j < n; j++) {
        float d = a[j * n + j];
        for (int k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
        float l = sqrtf(d > 1.17549435e-38f ? d : 1.17549435e-38f);
        a[j * n + j] = l;
        for (int i = j + 1; i < n; i++) {
            float s = a[i * n + j];
            for (int k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / l;
        }
    }
}

// Solves L·Lᵀ·x = b in place (b becomes x), with L from cholesky_factor.
HD void cholesky_solve(const float* l, float* b, int n) {
    for (int i = 0; i < n; i++) {
        float s = b[i];
        for (int k = 0; k < i; k++) s -= l[i * n + k] * b[k];
        b[i] = s / l[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        float s = b[i];
        for (int k = i + 1; k < n; k++) s -= l[k * n + i] * b[k];
        b[i] = s / l[i * n + i];
    }
}

#ifdef __CUDACC__
// ---------------------------------------------------------------------------------------------
// Deterministic block reduction: each thread holds one partial; the tree is fixed by blockDim
// (a power of two, at most 1024), so the sum is the same on every run. Every thread of the
// block must call it; all get the total. `scratch` holds blockDim.x floats.
__device__ inline float block_sum(float v, float* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) scratch[threadIdx.x] += scratch[threadIdx.x + w];
        __syncthreads();
    }
    float total = scratch[0];
    __syncthreads();
    return total;
}
#endif
