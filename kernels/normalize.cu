// Per-picture input normalisation, the CUDA twin of src/ops/normalize.rs (same arguments): one
// thread per (sample, feature) rescales that series of 30 days by the picture's last close, by
// its own 30-day mean, or not at all, as the masks of src/kernel_consts.rs say.
#include "common.cuh"

extern "C" __global__ void normalize_pictures(float* out, const float* inp, int b) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= b * PICTURE_FEATURES) return;
    int s = k / PICTURE_FEATURES, f = k % PICTURE_FEATURES;
    const float* pic = inp + (size_t)s * PICTURE_FEATURES * PICTURE_DAYS;
    const float* x = pic + f * PICTURE_DAYS;
    float* y = out + (size_t)s * PICTURE_FEATURES * PICTURE_DAYS + f * PICTURE_DAYS;
    float scale = 1.0f;
    if (NORM_BY_LAST_CLOSE & (1u << f)) {
        scale = pic[CLOSE_FEATURE * PICTURE_DAYS + PICTURE_DAYS - 1];
    } else if (NORM_BY_WINDOW_MEAN & (1u << f)) {
        // Summed in day order and divided by 30 as a float, as the CPU's fold.
        float sum = 0.0f;
        for (int d = 0; d < PICTURE_DAYS; ++d) sum += x[d];
        scale = sum / (float)PICTURE_DAYS;
    }
    for (int d = 0; d < PICTURE_DAYS; ++d) y[d] = scale > 0.0f ? x[d] / scale : 0.0f;
}
