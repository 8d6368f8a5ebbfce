// The CUDA device language as host C++, for the stand-in driver (docs/cuda_emulator.md).
// build.rs compiles every kernels/*.cu with this header included first; the kernel files are
// unchanged except for two rewrites no macro can express: `extern __shared__ T name[];` becomes
// `T* const name = static_cast<T*>(::emu::dynamic_shared());`, and each static
// `__shared__ T a[..], b[..];` is followed by `::emu::shared_array(a, sizeof a); ...`.
//
// Execution model: the threads of one block run as fibers on one OS thread, one after another;
// `__syncthreads()` switches to the next fiber. So a block's `__shared__` arrays are plain
// statics of the OS thread (`static thread_local`), and threadIdx is the running fiber's index.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
};

namespace emu {
// Set by the executor (executor.cpp) before it runs a block or switches to a fiber. Kernels read
// them after every opaque call (syncthreads), so a fiber always sees its own threadIdx.
extern thread_local const uint3* current_thread_idx;
extern thread_local uint3 current_block_idx;
extern thread_local dim3 current_block_dim;
extern thread_local dim3 current_grid_dim;

// Suspends the calling fiber until every thread of its block has arrived (executor.cpp).
void syncthreads();

// The launch's dynamic shared memory, ending against a guard page.
void* dynamic_shared();

// Records a static __shared__ array of this OS thread (build.rs adds the call after each
// declaration), so that every block starts with it holding garbage, as on a GPU.
void shared_array(void* p, size_t bytes);
}  // namespace emu

#define threadIdx (*::emu::current_thread_idx)
#define blockIdx (static_cast<const uint3&>(::emu::current_block_idx))
#define blockDim (static_cast<const dim3&>(::emu::current_block_dim))
#define gridDim (static_cast<const dim3&>(::emu::current_grid_dim))

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
// One copy per OS thread: the block running on it (its fibers share it).
#define __shared__ static thread_local
#define __syncthreads() ::emu::syncthreads()

// CUDA's integer and float min/max overloads (the host has no unqualified min/max).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

// The kernel files keep their device-only code (block_sum) under __CUDACC__; system headers are
// all included above, so none of them sees it.
#define __CUDACC__ 1
