// GRU, Keras reset_after variant (docs/models.md), the recurrence over the whole sequence in one
// launch. x [B, S, I], w_ih [I, 3H], w_hh [H, 3H], bias [2, 3H] (input bias row, recurrent bias
// row), gates z, r, h → h_out [B, H], cache [B, S, 5H]: z, r, ĥ, hU_h + b_hh (the reset-gated
// term) and h_t. The input side zx = x·W_ih + b_ih [B, S, 3H] is one GEMM over all B·S rows
// before the kernel (dense_forward); only h·U runs step by step.
// Cell maths (gru_cell_forward / gru_cell_backward) is in common.cuh.
//
// Dynamic shared memory (floats): H·3H + RNN_SAMPLES·(2·3H + H), forward and backward.
// One block per RNN_SAMPLES samples.
#include "rnn.cuh"

extern "C" __global__ void gru_forward(float* h_out, float* cache, const float* zx,
                                       const float* w_hh, const float* bias, int b, int s, int h) {
    extern __shared__ float sm[];
    int g = 3 * h, n0 = blockIdx.x * RNN_SAMPLES, ns = min(RNN_SAMPLES, b - n0);
    float* u = sm;                     // [H, 3H]
    float* zxs = u + h * g;            // [ns, 3H] x·W + b_ih
    float* zh = zxs + RNN_SAMPLES * g; // [ns, 3H] h·U + b_hh
    float* hs = zh + RNN_SAMPLES * g;  // [ns, H] h_{t−1}
    rnn_load(u, w_hh, h * g);
    for (int k = threadIdx.x; k < ns * h; k += blockDim.x) hs[k] = 0.0f;
    __syncthreads();
    for (int t = 0; t < s; t++) {
        rnn_stage_rows(zxs, zx, n0, ns, t, s, g);
        rnn_project(zh, hs, u, bias + g, ns, h, g, 0);
        __syncthreads();
        for (int nj = threadIdx.x; nj < ns * h; nj += blockDim.x) {
            int n = nj / h, j = nj % h;
            const float* a = zxs + n * g + j;
            const float* r = zh + n * g + j;
            float* cr = cache + ((size_t)(n0 + n) * s + t) * 5 * h + j;
            cr[3 * h] = r[2 * h];
            gru_cell_forward(a[0], a[h], a[2 * h], r[0], r[h], r[2 * h], hs[nj], cr, cr + h, cr + 2 * h,
                             hs + nj);
            cr[4 * h] = hs[nj];
        }
        __syncthreads();
    }
    for (int nj = threadIdx.x; nj < ns * h; nj += blockDim.x) h_out[(size_t)n0 * h + nj] = hs[nj];
}

// Backward through time: only the recurrence through U runs step by step. Writes the input-side
// pre-activation gradients dzx [B, S, 3H], the recurrent-side ones dzh [B, S, 3H] (they differ
// in the candidate gate: dzh = dzx·r there) and hprev [B, S, H], from which the host wrapper
// computes, as GEMMs over all B·S rows, dx += dzx·W_ihᵀ, dw_ih += xᵀ·dzx, dw_hh += hprevᵀ·dzh,
// dbias[0] += Σ dzx, dbias[1] += Σ dzh.
extern "C" __global__ void gru_backward_steps(float* dzx, float* dzh, float* hprev,
                                              const float* dh_out, const float* cache,
                                              const float* w_hh, int b, int s, int h) {
    extern __shared__ float sm[];
    int g = 3 * h, n0 = blockIdx.x * RNN_SAMPLES, ns = min(RNN_SAMPLES, b - n0);
    float* u = sm;                     // [H, 3H]
    float* dxs = u + h * g;            // [ns, 3H]
    float* drs = dxs + RNN_SAMPLES * g;  // [ns, 3H]
    float* dhs = drs + RNN_SAMPLES * g; // [ns, H] ∂L/∂h_t
    rnn_load(u, w_hh, h * g);
    for (int k = threadIdx.x; k < ns * h; k += blockDim.x) dhs[k] = dh_out[(size_t)n0 * h + k];
    __syncthreads();
    for (int t = s - 1; t >= 0; t--) {
        for (int nj = threadIdx.x; nj < ns * h; nj += blockDim.x) {
            int n = nj / h, j = nj % h;
            size_t row = (size_t)(n0 + n) * s + t;
            const float* cr = cache + row * 5 * h + j;
            float h_prev = t > 0 ? (cr - 5 * h)[4 * h] : 0.0f;
            float* a = dxs + n * g + j;
            float* r = drs + n * g + j;
            // The direct path dh·z; the path through U is added by rnn_project_back below.
            dhs[nj] = gru_cell_backward(cr[0], cr[h], cr[2 * h], cr[3 * h], h_prev, dhs[nj], a, a + h,
                                        a + 2 * h, r + 2 * h);
            r[0] = a[0];
            r[h] = a[h];
            for (int q = 0; q < 3; q++) {
                dzx[row * g + q * h + j] = a[q * h];
                dzh[row * g + q * h + j] = r[q * h];
            }
            hprev[row * h + j] = h_prev;
        }
        __syncthreads();
        rnn_project_back(dhs, h, drs, u, ns, h, g, 1);
        __syncthreads();
    }
}
