//! AlphaNet's feature-extraction layer (docs/features.md): windowed time-series statistics of the
//! 15 × 30 "data picture", one fused op so that each picture is read once and each window's
//! mean and centered values are computed once per feature and shared by every op and pair.
//!
//! Layout: input `[B, F, D]` (per sample, feature-major, each feature's days contiguous, oldest
//! first); output `[B, S, C]` (per sample, step-major, channels contiguous). Window `j` covers
//! days `[j·stride, j·stride + d)` with `d = window`, `S = (D − d)/stride + 1`.
//!
//! For one window `x_1..x_d` (oldest first), `x̄` its mean, `c_k = x_k − x̄`, `Sxx = Σ c_k²`,
//! `σ = sqrt(Sxx/d)`. Because `Σ c_k = 0`, the mean's own dependence on `x` drops out of every
//! derivative of a centered sum, which is why the formulas below are so short.
//!
//! | op | value | ∂value/∂x_k (and ∂/∂y_k for pairs) |
//! |---|---|---|
//! | corr(x, y) | `r = Sxy / sqrt(Sxx·Syy)` | `[c^y_k − r·sqrt(Syy/Sxx)·c^x_k] / sqrt(Sxx·Syy)`, symmetric in y |
//! | cov(x, y) | `Sxy / (d − 1)` | `c^y_k / (d − 1)`, and `c^x_k / (d − 1)` for y |
//! | stddev(x) | `σ` (population) | `c_k / (d·σ)`; 0 when `σ = 0` |
//! | zscore(x) | `z = x̄ / σ` | `(1 − z·c_k/σ) / (d·σ)` |
//! | return(x) | `x_d / x_1 − 1` | `1/x_1` at k = d, `−x_d/x_1²` at k = 1 |
//! | decaylinear(x) | `Σ w_k x_k`, `w_k = k / (d(d+1)/2)` | `w_k` |
//! | mean(x) | `x̄` | `1/d` |
//!
//! Degenerate windows give value 0 and gradient 0: corr when either series has variance
//! `Sxx/d < 1e-12·(1 + x̄²)`, zscore on the same test for x, return when `x_1 == 0`. The
//! stddev gradient `c_k/(dσ)` is bounded by `1/sqrt(d)` however small σ is, so only `σ = 0`
//! exactly needs the special case. All statistics are two-pass (centered), never `E[x²] − x̄²`.
//!
//! Files: the ops and `--ops` sets (`op.rs`), the layer's shape and pair lists (`spec.rs`), the
//! window statistics both passes share (`window.rs`), the forward (`forward.rs`), the backward
//! (`backward.rs`) and the gradient checks (`grad_checks.rs`).

mod backward;
mod forward;
mod grad_checks;
mod op;
mod spec;
mod window;

pub use backward::ts_features_backward;
pub use forward::ts_features_forward;
pub use grad_checks::checks;
pub use op::{Op, OpSet};
pub use spec::{all_pairs, pairs_among, FeatureSpec};
