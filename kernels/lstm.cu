// LSTM, Keras gates i, f, c, o (docs/models.md), the recurrence over the whole sequence in one
// launch. x [B, S, I], w_ih [I, 4H], w_hh [H, 4H], bias [4H] → h_out [B, H] (last hidden state),
// cache [B, S, 7H]: per (sample, step) the activated gates i, f, c̃, o, then c_t, tanh(c_t),
// h_t, the layout of the CPU reference (src/ops/lstm.rs). The input side zx = x·W_ih + bias
// [B, S, 4H] is one GEMM over all B·S rows before the kernel (dense_forward); only h·U runs step
// by step. Cell maths (lstm_cell_forward / lstm_cell_backward) is in common.cuh.
//
// Dynamic shared memory (floats): H·4H + RNN_SAMPLES·(4H + 2H), forward and backward.
// One block per RNN_SAMPLES samples.
#include "rnn.cuh"

// Floats cached per (sample, step, unit): i, f, c̃, o, c_t, tanh(c_t), h_t.
#define LSTM_SAVED 7

extern "C" __global__ void lstm_forward(float* h_out, float* cache, const float* zx,
                                        const float* w_hh, int b, int s, int h) {
    extern __shared__ float sm[];
    int g = 4 * h, n0 = blockIdx.x * RNN_SAMPLES, ns = min(RNN_SAMPLES, b - n0);
    float* u = sm;                    // [H, 4H]
    float* z = u + h * g;             // [ns, 4H]
    float* hs = z + RNN_SAMPLES * g;  // [ns, H] h_{t−1}
    float* cs = hs + RNN_SAMPLES * h; // [ns, H] c_{t−1}
    rnn_load(u, w_hh, h * g);
    for (int k = threadIdx.x; k < ns * h; k += blockDim.x) hs[k] = cs[k] = 0.0f;
    for (int t = 0; t < s; t++) {
        rnn_stage_rows(z, zx, n0, ns, t, s, g);
        __syncthreads();
        rnn_project(z, hs, u, 0, ns, h, g, 1);
        __syncthreads();
        for (int nj = threadIdx.x; nj < ns * h; nj += blockDim.x) {
            int n = nj / h, j = nj % h;
            const float* zn = z + n * g;
            float* cr = cache + ((size_t)(n0 + n) * s + t) * LSTM_SAVED * h + j;
            lstm_cell_forward(zn[j], zn[h + j], zn[2 * h + j], zn[3 * h + j], cs[nj], cr, cr + h,
                              cr + 2 * h, cr + 3 * h, cr + 4 * h, cr + 5 * h, cr + 6 * h);
            cs[nj] = cr[4 * h];
            hs[nj] = cr[6 * h];
        }
        __syncthreads();
    }
    for (int nj = threadIdx.x; nj < ns * h; nj += blockDim.x) h_out[(size_t)n0 * h + nj] = hs[nj];
}

// Backward through time: only what must run step by step, the recurrence through U. Writes the
// pre-activation gradients dz [B, S, 4H] and the previous hidden states hprev [B, S, H] (0 at
// t = 0), from which the host wrapper computes, as GEMMs over all B·S rows, dx += dz·W_ihᵀ,
// dw_ih += xᵀ·dz, dw_hh += hprevᵀ·dz and dbias += Σ dz.
extern "C" __global__ void lstm_backward_steps(float* dz, float* hprev, const float* dh_out,
                                               const float* cache, const float* w_hh, int b, int s,
                                               int h) {
    extern __shared__ float sm[];
    int g = 4 * h, n0 = blockIdx.x * RNN_SAMPLES, ns = min(RNN_SAMPLES, b - n0);
    float* u = sm;                    // [H, 4H]
    float* dzs = u + h * g;           // [ns, 4H]
    float* dhs = dzs + RNN_SAMPLES * g; // [ns, H] ∂L/∂h_t
    float* dcs = dhs + RNN_SAMPLES * h; // [ns, H] ∂L/∂c_t
    rnn_load(u, w_hh, h * g);
    for (int k = threadIdx.x; k < ns * h; k += blockDim.x) {
        dhs[k] = dh_out[(size_t)n0 * h + k];
        dcs[k] = 0.0f;
    }
    __syncthreads();
    for (int t = s - 1; t >= 0; t--) {
        for (int nj = threadIdx.x; nj < ns * h; nj += blockDim.x) {
            int n = nj / h, j = nj % h;
            size_t row = (size_t)(n0 + n) * s + t;
            const float* cr = cache + row * LSTM_SAVED * h + j;
            const float* prev = cr - LSTM_SAVED * h;  // the same unit at step t − 1
            float c_prev = t > 0 ? prev[4 * h] : 0.0f;
            float* d = dzs + n * g + j;
            dcs[nj] = lstm_cell_backward(cr[0], cr[h], cr[2 * h], cr[3 * h], cr[5 * h], c_prev, dhs[nj],
                                         dcs[nj], d, d + h, d + 2 * h, d + 3 * h);
            for (int q = 0; q < 4; q++) dz[row * g + q * h + j] = d[q * h];
            hprev[row * h + j] = t > 0 ? prev[6 * h] : 0.0f;
        }
        __syncthreads();
        rnn_project_back(dhs, h, dzs, u, ns, h, g, 0);
        __syncthreads();
    }
}
