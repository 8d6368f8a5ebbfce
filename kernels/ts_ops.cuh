// The feature-extraction ops of docs/features.md for one window x_1..x_d (oldest first): value and
// derivative. Statistics are two-pass (centered); the centered values xc_k = x_k − x̄ are
// computed once per (feature, window) and shared by every op and pair that reads them.
#pragma once
#include "common.cuh"

// Op bits of the `ops` mask, which is also the channel order: OP_CORR … OP_MEAN are defined in
// src/kernel_consts.rs (kernel_consts.cuh).
#define OP_PAIR_MASK (OP_CORR | OP_COV)

struct WinStats {
    float mean;  // x̄
    float ss;    // Sxx = Σ(x − x̄)²
    float norm;  // √Sxx: corr divides by a product of norms, never of Sxx, which overflows f32
                 // for large-scale features (volume), as in the CPU reference
};

// Fills xc with x − x̄ and returns x̄, Sxx and √Sxx.
HD WinStats win_stats(float* xc, const float* x, int d) {
    float s = 0.0f;
    for (int k = 0; k < d; k++) s += x[k];
    WinStats st;
    st.mean = s / (float)d;
    st.ss = 0.0f;
    for (int k = 0; k < d; k++) {
        xc[k] = x[k] - st.mean;
        st.ss += xc[k] * xc[k];
    }
    st.norm = sqrtf(st.ss);
    return st;
}

// A window too flat for corr/zscore: variance Σ(x−x̄)²/d below 1e-12·(1 + x̄²).
HD int win_flat(WinStats st, int d) { return st.ss / (float)d < 1e-12f * (1.0f + st.mean * st.mean); }

HD float win_dot(const float* a, const float* b, int d) {
    float s = 0.0f;
    for (int k = 0; k < d; k++) s += a[k] * b[k];
    return s;
}

// Population standard deviation σ = √Sxx / √d.
HD float win_stddev(WinStats st, int d) { return st.norm / sqrtf((float)d); }

// ts_corr = Σxc·yc / (√Sxx·√Syy);  ts_cov = Σxc·yc / (d − 1).
HD float ts_pair_value(int op, const float* xc, const float* yc, WinStats sx, WinStats sy, int d) {
    float cxy = win_dot(xc, yc, d);
    if (op == OP_COV) return cxy / (float)(d - 1);
    if (win_flat(sx, d) || win_flat(sy, d)) return 0.0f;
    return cxy / (sx.norm * sy.norm);
}

// Adds g·∂(op)/∂x_k to gx[k]; the derivative in y is the same call with x and y swapped.
//   ∂corr/∂x_k = yc_k/(√Sxx·√Syy) − corr·xc_k/Sxx;  ∂cov/∂x_k = yc_k/(d − 1).
// (The x̄ terms vanish because Σ yc_k = Σ xc_k = 0.)
HD void ts_pair_grad(int op, float* gx, const float* xc, const float* yc, WinStats sx, WinStats sy,
                     float g, int d) {
    if (op == OP_COV) {
        float a = g / (float)(d - 1);
        for (int k = 0; k < d; k++) gx[k] += a * yc[k];
        return;
    }
    if (win_flat(sx, d) || win_flat(sy, d)) return;
    float den = sx.norm * sy.norm;
    float partner = g / den, own = g * (win_dot(xc, yc, d) / den) / (sx.norm * sx.norm);
    for (int k = 0; k < d; k++) gx[k] += partner * yc[k] - own * xc[k];
}

// Σ_k w_k, w_k = k / (d(d+1)/2) for k = 1..d: the weight of x_k in ts_decaylinear.
HD float decay_weight(int k, int d) { return (float)(k + 1) / (0.5f * (float)d * (float)(d + 1)); }

// The single-series ops. x: raw window, xc: centered, st: its statistics.
//   stddev = √Sxx/√d;  zscore = x̄/stddev;  return = x_d/x_1 − 1;
//   decaylinear = Σ w_k x_k;  mean = x̄.
HD float ts_single_value(int op, const float* x, WinStats st, int d) {
    switch (op) {
        case OP_STDDEV: return win_stddev(st, d);
        case OP_ZSCORE: return win_flat(st, d) ? 0.0f : st.mean / win_stddev(st, d);
        case OP_RETURN: return x[0] == 0.0f ? 0.0f : x[d - 1] / x[0] - 1.0f;
        case OP_DECAYLINEAR: {
            float s = 0.0f;
            for (int k = 0; k < d; k++) s += decay_weight(k, d) * x[k];
            return s;
        }
        default: return st.mean;
    }
}

// Adds g·∂(op)/∂x_k to gx[k]:
//   ∂stddev/∂x_k = xc_k/(d·σ)   (0 for a constant window, where σ = 0 has no derivative)
//   ∂zscore/∂x_k = (1 − z·xc_k/σ)/(d·σ)
//   ∂return/∂x_d = 1/x_1, ∂return/∂x_1 = −x_d/x_1²
//   ∂decaylinear/∂x_k = w_k;  ∂mean/∂x_k = 1/d
HD void ts_single_grad(int op, float* gx, const float* x, const float* xc, WinStats st, float g,
                       int d) {
    float sd = win_stddev(st, d);
    switch (op) {
        case OP_STDDEV:
            if (sd > 0.0f)
                for (int k = 0; k < d; k++) gx[k] += g * xc[k] / ((float)d * sd);
            return;
        case OP_ZSCORE: {
            if (win_flat(st, d)) return;
            float z = st.mean / sd;
            for (int k = 0; k < d; k++) gx[k] += g * (1.0f - z * xc[k] / sd) / ((float)d * sd);
            return;
        }
        case OP_RETURN:
            if (x[0] == 0.0f) return;
            gx[d - 1] += g / x[0];
            gx[0] -= g * x[d - 1] / (x[0] * x[0]);
            return;
        case OP_DECAYLINEAR:
            for (int k = 0; k < d; k++) gx[k] += g * decay_weight(k, d);
            return;
        default:
            for (int k = 0; k < d; k++) gx[k] += g / (float)d;
    }
}

// Number of output channels of an op mask: n_pairs per pair op, n_features per single op.
HD int ts_channels(int ops, int n_features, int n_pairs) {
    int c = 0;
    for (int op = OP_CORR; op <= OP_MEAN; op <<= 1)
        if (ops & op) c += (op & OP_PAIR_MASK) ? n_pairs : n_features;
    return c;
}
