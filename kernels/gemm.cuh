// A 16×16 shared-memory tiled matrix product, the one GEMM every layer uses (Dense forward and
// backward, the recurrent layers' weight gradients). Each output element sums its k terms in
// increasing k, so results are deterministic. Operands are read through strides, so transposes
// cost nothing.
#pragma once
#include "common.cuh"

#define TILE 16

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

// Tile (blockIdx.y, blockIdx.x) of C[M, N] (row stride ldc):
//   C(m, n) = (accumulate ? C(m, n) : bias ? bias[n] : 0) + Σ_k A(m, k)·B(k, n).
// blockDim = (TILE, TILE). Returns at once, for the whole block, when the tile is outside C.
__device__ inline void tile_matmul(float* C, int ldc, Mat A, Mat B, int M, int N, int K,
                                   const float* bias, int accumulate) {
    __shared__ float As[TILE][TILE + 1], Bs[TILE][TILE + 1];
    if ((int)blockIdx.y * TILE >= M || (int)blockIdx.x * TILE >= N) return;
    int tx = threadIdx.x, ty = threadIdx.y;
    int m = blockIdx.y * TILE + ty, n = blockIdx.x * TILE + tx;
    float s = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        As[ty][tx] = (m < M && k0 + tx < K) ? A.p[(size_t)m * A.sr + (size_t)(k0 + tx) * A.sc] : 0.0f;
        Bs[ty][tx] = (k0 + ty < K && n < N) ? B.p[(size_t)(k0 + ty) * B.sr + (size_t)n * B.sc] : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < TILE; kk++) s += As[ty][kk] * Bs[kk][tx];
        __syncthreads();
    }
    if (m < M && n < N) {
        float* c = C + (size_t)m * ldc + n;
        *c = (accumulate ? *c : (bias ? bias[n] : 0.0f)) + s;
    }
}
