// The kernels' per-thread maths (the .cuh files), compiled for the host and exported with C
// linkage so src/cuda/host_maths.rs can test it on machines without a GPU.
#include "ts_ops.cuh"

extern "C" {

unsigned long long khm_splitmix64(unsigned long long x) { return splitmix64(x); }

double khm_dropout_uniform(unsigned long long seed, unsigned long long k) {
    return dropout_uniform(seed, k);
}

float khm_dropout_mask(unsigned long long seed, unsigned long long k, double p) {
    return dropout_mask(seed, k, p);
}

void khm_adam_element(float* p, float* m, float* v, float g, float lr_t, float beta1, float beta2,
                      float eps) {
    adam_element(p, m, v, g, lr_t, beta1, beta2, eps);
}

// out: i, f, c̃, o, c, tanh c, h.
void khm_lstm_cell_forward(const float* z, float c_prev, float* out) {
    lstm_cell_forward(z[0], z[1], z[2], z[3], c_prev, out, out + 1, out + 2, out + 3, out + 4, out + 5,
                      out + 6);
}

// gates: i, f, c̃, o; tc: tanh c; dz: the four pre-activation gradients; returns ∂L/∂c_{t−1}.
float khm_lstm_cell_backward(const float* gates, float tc, float c_prev, float dh, float dc, float* dz) {
    return lstm_cell_backward(gates[0], gates[1], gates[2], gates[3], tc, c_prev, dh, dc, dz, dz + 1,
                              dz + 2, dz + 3);
}

// xp, rp: input-side and recurrent-side pre-activations (z, r, h); out: z, r, ĥ, h'.
void khm_gru_cell_forward(const float* xp, const float* rp, float h_prev, float* out) {
    gru_cell_forward(xp[0], xp[1], xp[2], rp[0], rp[1], rp[2], h_prev, out, out + 1, out + 2, out + 3);
}

// d: dxz, dxr, dxh, drh; returns the direct part of ∂L/∂h_prev.
float khm_gru_cell_backward(float z, float r, float hh, float rh, float h_prev, float dh, float* d) {
    return gru_cell_backward(z, r, hh, rh, h_prev, dh, d, d + 1, d + 2, d + 3);
}

// Solves a·x = b in place (b becomes x; a is overwritten by its factor).
void khm_cholesky_solve(float* a, float* b, int n) {
    cholesky_factor(a, n);
    cholesky_solve(a, b, n);
}

// Value of a pair op on windows x, y and its gradients (gx, gy overwritten) for upstream 1.
float khm_ts_pair(int op, const float* x, const float* y, int d, float* gx, float* gy) {
    float xc[MAX_WINDOW], yc[MAX_WINDOW];
    WinStats sx = win_stats(xc, x, d), sy = win_stats(yc, y, d);
    for (int k = 0; k < d; k++) gx[k] = gy[k] = 0.0f;
    ts_pair_grad(op, gx, xc, yc, sx, sy, 1.0f, d);
    ts_pair_grad(op, gy, yc, xc, sy, sx, 1.0f, d);
    return ts_pair_value(op, xc, yc, sx, sy, d);
}

// Value of a single-series op on window x and its gradient (gx overwritten) for upstream 1.
float khm_ts_single(int op, const float* x, int d, float* gx) {
    float xc[MAX_WINDOW];
    WinStats st = win_stats(xc, x, d);
    for (int k = 0; k < d; k++) gx[k] = 0.0f;
    ts_single_grad(op, gx, x, xc, st, 1.0f, d);
    return ts_single_value(op, x, st, d);
}

int khm_ts_channels(int ops, int n_features, int n_pairs) { return ts_channels(ops, n_features, n_pairs); }
}
