// Dense layer: out[B, O] = inp[B, I]·w[I, O] + bias.
// Backward: dinp += dout·wᵀ, dw += inpᵀ·dout, dbias += Σ_b dout.
// Also the two reductions the recurrent layers use for their weight gradients.
// Launch: blockDim (16, 16); grids in src/cuda/launch.rs.
#include "gemm.cuh"

extern "C" __global__ void dense_forward(float* out, const float* inp, const float* w,
                                         const float* bias, int b, int i, int o) {
    tile_matmul(out, o, mat(inp, i, 1), mat(w, o, 1), b, o, i, bias, 0);
}

// Column sums over rows in row order: out[n] += Σ_r a[r·lda + n]. Deterministic: one thread
// owns one column.
__device__ inline void column_sums(float* out, const float* a, int rows, int n, int lda, int col) {
    if (col >= n) return;
    float s = 0.0f;
    for (int r = 0; r < rows; r++) s += a[(size_t)r * lda + col];
    out[col] += s;
}

// blockIdx.z picks the gradient: 0 → dinp [B, I], 1 → dw [I, O], 2 → dbias [O].
extern "C" __global__ void dense_backward(float* dinp, float* dw, float* dbias, const float* dout,
                                          const float* inp, const float* w, int b, int i, int o) {
    if (blockIdx.z == 0) {
        tile_matmul(dinp, i, mat(dout, o, 1), mat(w, 1, o), b, i, o, 0, 1);
    } else if (blockIdx.z == 1) {
        tile_matmul(dw, o, mat(inp, 1, i), mat(dout, o, 1), i, o, b, 0, 1);
    } else if (blockIdx.y == 0 && threadIdx.y == 0) {
        column_sums(dbias, dout, b, o, o, blockIdx.x * TILE + threadIdx.x);
    }
}

// c[M, N] += aᵀ·b with a [K, M] (row stride lda) and b [K, N] (row stride ldb): the weight
// gradient Σ over all (sample, step) rows of xᵀ·dz, summed in row order for every element.
extern "C" __global__ void matmul_tn_acc(float* c, const float* a, const float* b, int m, int n,
                                         int k, int lda, int ldb) {
    tile_matmul(c, n, mat(a, 1, lda), mat(b, ldb, 1), m, n, k, 0, 1);
}

// out[N] += Σ_r a[r, :] over `rows` rows of row stride lda (bias gradients).
extern "C" __global__ void colsum_acc(float* out, const float* a, int rows, int n, int lda) {
    column_sums(out, a, rows, n, lda, blockIdx.x * blockDim.x + threadIdx.x);
}
