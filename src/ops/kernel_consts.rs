//! Constants the Rust code and the CUDA kernels must agree on, defined once here. build.rs reads
//! this file and writes each `pub const NAME: TYPE = VALUE;` as `#define NAME VALUE` into the
//! generated header `kernel_consts.cuh`, which `kernels/common.cuh` includes; so every value is
//! an integer literal (build.rs refuses anything else).

/// Raw daily series per data picture.
pub const PICTURE_FEATURES: usize = 15;
/// Days per data picture, oldest first.
pub const PICTURE_DAYS: usize = 30;

/// Threads per block of the 1-D kernels; a power of two so `block_sum`'s tree is exact.
pub const BLOCK: usize = 256;
/// The GEMM's output tile side (`GEMM_TILE × GEMM_TILE` outputs per block). A 128 × 64 tile with
/// 8 × 4 outputs per thread measured slower on an H200 for the dx and weight-gradient products
/// (faster only for x·W_ih): v2 at batch 16384 went from 7.4M to 6.5M samples/s.
pub const GEMM_TILE: usize = 64;
/// Threads per GEMM tile side: each thread computes (GEMM_TILE / GEMM_THREADS)² outputs.
pub const GEMM_THREADS: usize = 16;
/// Rows of a split-K range and of a column-sum chunk: a partition by shape, never by GPU.
pub const SPLIT_ROWS: usize = 256;
/// Samples per block of the fused recurrent kernels.
pub const RNN_SAMPLES: usize = 4;
/// Largest number of style factors of the neutralized loss (its normal equations live in shared
/// memory).
pub const MAX_STYLES: usize = 15;
/// Longest window the host build of the feature maths (host_shim.cpp) accepts.
pub const MAX_WINDOW: usize = 64;

/// Op bits of the feature layer's `ops` mask, in channel order: bit `1 << k` is the CPU's `Op`
/// number k.
pub const OP_CORR: u32 = 1;
pub const OP_COV: u32 = 2;
pub const OP_STDDEV: u32 = 4;
pub const OP_ZSCORE: u32 = 8;
pub const OP_RETURN: u32 = 16;
pub const OP_DECAYLINEAR: u32 = 32;
pub const OP_MEAN: u32 = 64;

/// Per-picture input normalisation (src/ops/normalize.rs): the feature holding the close price,
/// and as bit masks over the 15 features (bit f for feature f), those divided by the picture's
/// last close (open, close, high, low, vwap: bits 1, 2, 3, 4, 6 = 94) and those divided by their
/// own 30-day mean (volume, turn, free_turn, close/free_turn, open/turn, volume/low: bits 5,
/// 7..=11 = 4000); `masks_name_the_documented_features` checks the bits.
pub const CLOSE_FEATURE: usize = 2;
pub const NORM_BY_LAST_CLOSE: u32 = 94;
pub const NORM_BY_WINDOW_MEAN: u32 = 4000;

/// The activations (src/ops/elementwise.rs `Activation`), as the kernels switch on them.
pub const ACT_RELU: u32 = 0;
pub const ACT_TANH: u32 = 1;
