// Deliberately broken kernels, one per check of the CUDA stand-in, and correct twins on which the
// checks must stay quiet (tests/emulator.rs). build.rs compiles them into the stand-in; the
// library never loads them (they are not in kernels/), the test compiles this file with NVRTC.
// Self-contained: no includes, so NVRTC takes it as it is.

// Correct: out[k] = inp[k] for k < n.
extern "C" __global__ void emu_test_copy(float* out, const float* inp, int n) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n) out[k] = inp[k];
}

// Off by one: thread n writes out[n], one element past the end.
extern "C" __global__ void emu_test_write_past_end(float* out, int n) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k <= n) out[k] = (float)k;
}

// Off by one: thread n − 1 reads inp[n], one element past the end.
extern "C" __global__ void emu_test_read_past_end(float* out, const float* inp, int n) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n) out[k] = inp[k + 1];
}

// Each thread writes its slot of the dynamic shared memory; launched with room for one thread
// fewer than the block has, the last thread writes past its end.
extern "C" __global__ void emu_test_shared_slots(float* out) {
    extern __shared__ float slots[];
    slots[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = slots[blockDim.x / 2];
}

// Thread 0 returns before the barrier that every other thread waits at.
extern "C" __global__ void emu_test_early_return(float* out) {
    __shared__ float s[64];
    if (threadIdx.x == 0) return;
    s[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

// The sum of each block's blockDim.x inputs by a shared-memory tree (blockDim.x a power of two,
// at most 256). with_barrier = 0 drops the barrier between the stores and the first level of the
// tree, so a thread may add a partner's slot before the partner stored it: a race.
extern "C" __global__ void emu_test_block_sum(float* out, const float* inp, int with_barrier) {
    __shared__ float scratch[256];
    scratch[threadIdx.x] = inp[blockIdx.x * blockDim.x + threadIdx.x];
    if (with_barrier) __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) scratch[threadIdx.x] += scratch[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = scratch[0];
}

// Every block writes the same element: which block writes last decides the result, a race
// between blocks.
extern "C" __global__ void emu_test_blocks_collide(float* out) {
    if (threadIdx.x == 0) out[0] = (float)blockIdx.x;
}
