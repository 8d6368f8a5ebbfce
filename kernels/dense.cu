// Dense layer forward, and the matrix products and reductions the host wrappers compose the
// backward passes from (src/cuda/launch/dense.rs):
//   out[B, O] = inp[B, I]·w[I, O] + bias;
//   dinp += dout·wᵀ (matmul_acc), dw += inpᵀ·dout (matmul_splitk + splitk_combine),
//   dbias += Σ_b dout (column_partials + splitk_combine).
// The recurrent layers use the same three for dx and their weight and bias gradients.
// GEMM launch: blockDim (GEMM_THREADS, GEMM_THREADS), one block per GEMM_TILE² output tile.
#include "gemm.cuh"

extern "C" __global__ void dense_forward(float* out, const float* inp, const float* w,
                                         const float* bias, int b, int i, int o) {
    tile_matmul(out, o, mat(inp, i, 1), mat(w, o, 1), b, o, 0, i, bias, 0);
}

// c[M, N] (row stride ldc) += A·B, A(m, k) = a[m·a_sr + k·a_sc], B(k, n) = b[k·b_sr + n·b_sc].
extern "C" __global__ void matmul_acc(float* c, int ldc, const float* a, int a_sr, int a_sc,
                                      const float* b, int b_sr, int b_sc, int m, int n, int k) {
    tile_matmul(c, ldc, mat(a, a_sr, a_sc), mat(b, b_sr, b_sc), m, n, 0, k, 0, 1);
}

// Split-K part z = blockIdx.z of A·B: partial[z, M, N] = Σ over k ∈ [z·SPLIT_ROWS, (z+1)·SPLIT_ROWS).
extern "C" __global__ void matmul_splitk(float* partial, const float* a, int a_sr, int a_sc,
                                         const float* b, int b_sr, int b_sc, int m, int n, int k) {
    int k0 = blockIdx.z * SPLIT_ROWS, k1 = min(k, k0 + SPLIT_ROWS);
    tile_matmul(partial + (size_t)blockIdx.z * m * n, n, mat(a, a_sr, a_sc), mat(b, b_sr, b_sc), m,
                n, k0, k1, 0, 0);
}

// Column sums of row chunk z = blockIdx.y: partial[z, col] = Σ_{r in chunk} f(a[r·lda + col]),
// f(x) = x without a center, (x − center[col])² with one (the centred second moment of BN).
// Consecutive threads read consecutive columns, so the loads coalesce.
extern "C" __global__ void column_partials(float* partial, const float* a, const float* center,
                                           int rows, int n, int lda) {
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= n) return;
    int r0 = blockIdx.y * SPLIT_ROWS, r1 = min(rows, r0 + SPLIT_ROWS);
    float s = 0.0f;
    if (center) {
        float mu = center[col];
        for (int r = r0; r < r1; r++) {
            float e = a[(size_t)r * lda + col] - mu;
            s += e * e;
        }
    } else {
        for (int r = r0; r < r1; r++) s += a[(size_t)r * lda + col];
    }
    partial[(size_t)blockIdx.y * n + col] = s;
}

// c[i] = (accumulate ? c[i] : 0) + (Σ_z partial[z·stride + i])·scale for i < len, the parts
// summed in order z = 0, 1, …
extern "C" __global__ void splitk_combine(float* c, const float* partial, int len, int stride,
                                          int splits, float scale, int accumulate) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) return;
    float s = 0.0f;
    for (int z = 0; z < splits; z++) s += partial[(size_t)z * stride + i];
    c[i] = (accumulate ? c[i] : 0.0f) + s * scale;
}
