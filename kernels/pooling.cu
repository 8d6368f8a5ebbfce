// Pooling over time (v1 head, docs/features.md): for each window of `window` steps,
// every `stride` steps, the mean, max and min of each channel.
// inp [B, steps, C] → out [B, S', 3C], S' = (steps − window)/stride + 1, channel blocks
// [mean×C | max×C | min×C].
// Backward: the mean spreads dy/window over the window; max and min route dy to the first
// step holding the extreme (ties go to the earliest step, as in the CPU reference).
#include "common.cuh"

// Index of the first maximum (sign = 1) or minimum (sign = −1) of x[0], x[ld], ...
__device__ inline int pool_argext(const float* x, int ld, int window, float sign) {
    int best = 0;
    for (int k = 1; k < window; k++)
        if (sign * x[k * ld] > sign * x[best * ld]) best = k;
    return best;
}

// One thread per (sample, channel) walks every window: windows may overlap, and a thread
// that owns its column can accumulate without atomics.
extern "C" __global__ void pool_forward(float* out, const float* inp, int b, int steps, int channels,
                                        int window, int stride) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= b * channels) return;
    int n = k / channels, c = k % channels, s_out = (steps - window) / stride + 1;
    const float* x = inp + (size_t)n * steps * channels + c;
    for (int s = 0; s < s_out; s++) {
        const float* xw = x + s * stride * channels;
        float sum = 0.0f;
        for (int t = 0; t < window; t++) sum += xw[t * channels];
        float* y = out + ((size_t)n * s_out + s) * 3 * channels + c;
        y[0] = sum / (float)window;
        y[channels] = xw[pool_argext(xw, channels, window, 1.0f) * channels];
        y[2 * channels] = xw[pool_argext(xw, channels, window, -1.0f) * channels];
    }
}

extern "C" __global__ void pool_backward(float* dinp, const float* dout, const float* inp, int b,
                                         int steps, int channels, int window, int stride) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= b * channels) return;
    int n = k / channels, c = k % channels, s_out = (steps - window) / stride + 1;
    size_t off = (size_t)n * steps * channels + c;
    const float* x = inp + off;
    float* dx = dinp + off;
    for (int s = 0; s < s_out; s++) {
        const float* xw = x + s * stride * channels;
        float* dxw = dx + s * stride * channels;
        const float* dy = dout + ((size_t)n * s_out + s) * 3 * channels + c;
        for (int t = 0; t < window; t++) dxw[t * channels] += dy[0] / (float)window;
        dxw[pool_argext(xw, channels, window, 1.0f) * channels] += dy[channels];
        dxw[pool_argext(xw, channels, window, -1.0f) * channels] += dy[2 * channels];
    }
}
