// The one GEMM every layer uses (Dense forward and backward, the recurrent layers' input
// projections and weight gradients), and the fixed-partition split-K reductions that make long
// sums parallel without atomics. Operands are read through strides, so transposes cost nothing.
//
// Determinism: each output element sums its k terms in increasing k inside its k range; a
// split-K product sums the ranges of SPLIT_ROWS rows in range order (splitk_combine). The
// partition depends on the shapes only, never on the GPU, so every GPU gives the same bits.
#pragma once
#include "common.cuh"

// Output tile: a block of GEMM_THREADS × GEMM_THREADS threads computes GEMM_TILE × GEMM_TILE
// outputs, each thread a 4 × 4 register block (rows ty + 16·a, columns tx + 16·b). SPLIT_ROWS rows
// of the reduction dimension per split-K range (also the row chunk of the column sums). All three
// come from src/kernel_consts.rs.
#if GEMM_TILE != 4 * GEMM_THREADS
#error "tile_matmul computes 4 × 4 outputs per thread: GEMM_TILE must be 4 · GEMM_THREADS"
#endif
// k-slice staged in shared memory per iteration.
#define GEMM_K 16

// Element (r, c) of a strided matrix view is p[r·sr + c·sc].
struct Mat {
    const float* p;
    int sr, sc;
};

HD Mat mat(const float* p, int sr, int sc) {
    Mat m;
    m.p = p;
    m.sr = sr;
    m.sc = sc;
    return m;
}

// Tile (blockIdx.y, blockIdx.x) of C[M, N] (row stride ldc), over k ∈ [k0, k1):
//   C(m, n) = (accumulate ? C(m, n) : bias ? bias[n] : 0) + Σ_k A(m, k)·B(k, n).
// blockDim = (GEMM_THREADS, GEMM_THREADS). Returns at once, for the whole block, when the tile is
// outside C. Shared-memory loads run along whichever of a view's strides is 1, so they coalesce.
__device__ inline void tile_matmul(float* C, int ldc, Mat A, Mat B, int M, int N, int k0, int k1,
                                   const float* bias, int accumulate) {
    __shared__ float As[GEMM_K][GEMM_TILE + 4], Bs[GEMM_K][GEMM_TILE + 4];
    int m0 = blockIdx.y * GEMM_TILE, n0 = blockIdx.x * GEMM_TILE;
    if (m0 >= M || n0 >= N) return;
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * GEMM_THREADS + tx;
    const int per = GEMM_THREADS * GEMM_THREADS;
    float acc[4][4];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) acc[a][b] = 0.0f;
    for (int kb = k0; kb < k1; kb += GEMM_K) {
        for (int e = tid; e < GEMM_K * GEMM_TILE; e += per) {
            int mm = A.sc == 1 ? e / GEMM_K : e % GEMM_TILE;
            int kk = A.sc == 1 ? e % GEMM_K : e / GEMM_TILE;
            int m = m0 + mm, k = kb + kk;
            As[kk][mm] = (m < M && k < k1) ? A.p[(size_t)m * A.sr + (size_t)k * A.sc] : 0.0f;
            int nn = B.sc == 1 ? e % GEMM_TILE : e / GEMM_K;
            kk = B.sc == 1 ? e / GEMM_TILE : e % GEMM_K;
            int n = n0 + nn;
            k = kb + kk;
            Bs[kk][nn] = (n < N && k < k1) ? B.p[(size_t)k * B.sr + (size_t)n * B.sc] : 0.0f;
        }
        __syncthreads();
        for (int kk = 0; kk < GEMM_K; kk++) {
            float av[4], bv[4];
            for (int a = 0; a < 4; a++) av[a] = As[kk][ty + GEMM_THREADS * a];
            for (int b = 0; b < 4; b++) bv[b] = Bs[kk][tx + GEMM_THREADS * b];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) acc[a][b] += av[a] * bv[b];
        }
        __syncthreads();
    }
    for (int a = 0; a < 4; a++) {
        int m = m0 + ty + GEMM_THREADS * a;
        for (int b = 0; b < 4; b++) {
            int n = n0 + tx + GEMM_THREADS * b;
            if (m < M && n < N) {
                float* c = C + (size_t)m * ldc + n;
                *c = (accumulate ? *c : (bias ? bias[n] : 0.0f)) + acc[a][b];
            }
        }
    }
}
