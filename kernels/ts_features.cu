// The fused feature-extraction layer (docs/features.md, docs/engine.md), the CUDA twin of
// src/ops/ts_features/ with the FeatureSpec flattened into (n_features, days, window, stride,
// ops, n_pairs, pairs). One block per sample: the
// picture inp[b] ([F, D], days oldest first) is read once into shared memory, each
// (feature, window) is centered once, and every op and pair reads those centered windows.
//
// out [B, S, C], S = (D − d)/stride + 1, channels in op-bit order: corr pairs, cov pairs,
// stddev×F, zscore×F, return×F, decaylinear×F, mean×F (only the ops set in `ops`, whose bit
// 1 << k is the CPU's `Op` number k). pairs: the spec's n_pairs (i, j), i < j, as 2·n_pairs u16.
//
// Dynamic shared memory: F·D + F·S·(2d + 3) floats, the size `ts_launch`
// (src/cuda/launch/ts_features.rs) launches with; TsLayout below splits it into the picture, the
// centered windows, their stats and gradients.
#include "ts_ops.cuh"

struct TsLayout {
    int F, D, d, stride, S, C;
    float* pic;    // [F, D]
    float* xc;     // [F, S, d] centered windows
    WinStats* st;  // [F, S]
    float* gw;     // [F, S, d] gradient of each window's values (backward only)
};

// Loads the picture of sample blockIdx.x and computes every window's centered values and stats.
__device__ TsLayout ts_setup(const float* inp, int F, int D, int d, int stride, int ops, int n_pairs) {
    extern __shared__ float smem[];
    TsLayout l;
    l.F = F;
    l.D = D;
    l.d = d;
    l.stride = stride;
    l.S = (D - d) / stride + 1;
    l.C = ts_channels(ops, F, n_pairs);
    l.pic = smem;
    l.xc = l.pic + F * D;
    l.st = (WinStats*)(l.xc + F * l.S * d);
    l.gw = (float*)(l.st + F * l.S);
    const float* x = inp + (size_t)blockIdx.x * F * D;
    for (int k = threadIdx.x; k < F * D; k += blockDim.x) l.pic[k] = x[k];
    __syncthreads();
    for (int fw = threadIdx.x; fw < F * l.S; fw += blockDim.x) {
        int f = fw / l.S, w = fw % l.S;
        l.st[fw] = win_stats(l.xc + fw * d, l.pic + f * D + w * stride, d);
    }
    __syncthreads();
    return l;
}

extern "C" __global__ void ts_features_forward(float* out, const float* inp, int b, int n_features,
                                               int days, int window, int stride, int ops,
                                               int n_pairs, const unsigned short* pairs) {
    if ((int)blockIdx.x >= b) return;
    TsLayout l = ts_setup(inp, n_features, days, window, stride, ops, n_pairs);
    float* y = out + (size_t)blockIdx.x * l.S * l.C;
    // Consecutive threads write consecutive channels of one step: coalesced stores.
    for (int k = threadIdx.x; k < l.S * l.C; k += blockDim.x) {
        int w = k / l.C, c = k % l.C, op = OP_CORR;
        for (;; op <<= 1) {
            if (!(ops & op)) continue;
            int n = (op & OP_PAIR_MASK) ? n_pairs : l.F;
            if (c < n) break;
            c -= n;
        }
        float v;
        if (op & OP_PAIR_MASK) {
            int fi = pairs[2 * c] * l.S + w, fj = pairs[2 * c + 1] * l.S + w;
            v = ts_pair_value(op, l.xc + fi * l.d, l.xc + fj * l.d, l.st[fi], l.st[fj], l.d);
        } else {
            int fw = c * l.S + w;
            v = ts_single_value(op, l.pic + c * l.D + w * l.stride, l.st[fw], l.d);
        }
        y[k] = v;
    }
}

// Each thread owns one (feature, window) and gathers every channel's gradient into that window
// (pairs are visited from both ends), then each thread owns one (feature, day) and sums its
// overlapping windows in window order: no two threads write one value, so no atomics.
extern "C" __global__ void ts_features_backward(float* dinp, const float* dout, const float* inp,
                                                int b, int n_features, int days, int window,
                                                int stride, int ops, int n_pairs,
                                                const unsigned short* pairs) {
    if ((int)blockIdx.x >= b) return;
    TsLayout l = ts_setup(inp, n_features, days, window, stride, ops, n_pairs);
    const float* dy = dout + (size_t)blockIdx.x * l.S * l.C;
    for (int fw = threadIdx.x; fw < l.F * l.S; fw += blockDim.x) {
        int f = fw / l.S, w = fw % l.S;
        float* g = l.gw + fw * l.d;
        const float* xc = l.xc + fw * l.d;
        for (int k = 0; k < l.d; k++) g[k] = 0.0f;
        int base = 0;
        for (int op = OP_CORR; op <= OP_MEAN; op <<= 1) {
            if (!(ops & op)) continue;
            const float* dyo = dy + w * l.C + base;
            if (op & OP_PAIR_MASK) {
                for (int p = 0; p < n_pairs; p++) {
                    int i = pairs[2 * p], j = pairs[2 * p + 1];
                    if (i != f && j != f) continue;
                    int o = (i == f ? j : i) * l.S + w;
                    ts_pair_grad(op, g, xc, l.xc + o * l.d, l.st[fw], l.st[o], dyo[p], l.d);
                }
                base += n_pairs;
            } else {
                ts_single_grad(op, g, l.pic + f * l.D + w * l.stride, xc, l.st[fw], dyo[f], l.d);
                base += l.F;
            }
        }
    }
    __syncthreads();
    float* dx = dinp + (size_t)blockIdx.x * l.F * l.D;
    for (int k = threadIdx.x; k < l.F * l.D; k += blockDim.x) {
        int f = k / l.D, t = k % l.D;
        float s = 0.0f;
        for (int w = 0; w < l.S; w++) {
            int o = t - w * l.stride;
            if (o >= 0 && o < l.d) s += l.gw[(f * l.S + w) * l.d + o];
        }
        dx[k] += s;
    }
}
