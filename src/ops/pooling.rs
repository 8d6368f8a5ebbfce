//! v1's temporal pooling (docs/features.md): over windows of `window` steps with stride `stride` of a
//! `[B, steps, C]` sequence, the per-channel ts_mean, ts_max and ts_min, giving `[B, S', 3C]`
//! with `S' = (steps − window)/stride + 1` and channels ordered mean of all C, max of all C,
//! min of all C.
//!
//! | op | value | ∂value/∂x_t |
//! |---|---|---|
//! | ts_mean | `Σ x_t / window` | `1/window` |
//! | ts_max | `max_t x_t` | 1 at the first arg-max, 0 elsewhere |
//! | ts_min | `min_t x_t` | 1 at the first arg-min, 0 elsewhere |

use crate::ops::gradcheck::{self, CheckResult};
use crate::util::float::Float;
use rand::Rng;
use rayon::prelude::*;

/// Output steps `S' = (steps − window)/stride + 1`.
pub fn pooled_steps(steps: usize, window: usize, stride: usize) -> usize {
    assert!(
        window >= 1 && window <= steps && stride >= 1,
        "pooling: window {window}, stride {stride}, steps {steps}"
    );
    (steps - window) / stride + 1
}

/// Sum, first arg-max and first arg-min (as step indices) of channel `ch` over steps
/// `[start, start + window)` of one sample `x` (`[steps, C]`). Forward and backward both use it,
/// so the gradient goes exactly where the forward's extreme came from.
fn window_extremes<T: Float>(
    x: &[T],
    channels: usize,
    ch: usize,
    start: usize,
    window: usize,
) -> (T, usize, usize) {
    let at = |t: usize| x[t * channels + ch];
    let (mut sum, mut imax, mut imin) = (T::zero(), start, start);
    for t in start..start + window {
        sum += at(t);
        if at(t) > at(imax) {
            imax = t;
        }
        if at(t) < at(imin) {
            imin = t;
        }
    }
    (sum, imax, imin)
}

/// `out[B, S', 3C]` = mean, max, min over each window of `inp[B, steps, C]`.
pub fn pool_forward<T: Float>(
    out: &mut [T],
    inp: &[T],
    b: usize,
    steps: usize,
    channels: usize,
    window: usize,
    stride: usize,
) {
    let s_out = pooled_steps(steps, window, stride);
    assert_eq!(inp.len(), b * steps * channels, "pool_forward: inp size");
    assert_eq!(
        out.len(),
        b * s_out * 3 * channels,
        "pool_forward: out size"
    );
    let wt = T::c(window as f64);
    out.par_chunks_mut(s_out * 3 * channels)
        .zip(inp.par_chunks(steps * channels))
        .for_each(|(o, x)| {
            for (s, o) in o.chunks_exact_mut(3 * channels).enumerate() {
                for ch in 0..channels {
                    let (sum, imax, imin) = window_extremes(x, channels, ch, s * stride, window);
                    o[ch] = sum / wt;
                    o[channels + ch] = x[imax * channels + ch];
                    o[2 * channels + ch] = x[imin * channels + ch];
                }
            }
        });
}

/// Accumulates `∂L/∂inp` into `dinp[B, steps, C]` from `dout[B, S', 3C]`.
#[allow(clippy::too_many_arguments)]
pub fn pool_backward<T: Float>(
    dinp: &mut [T],
    dout: &[T],
    inp: &[T],
    b: usize,
    steps: usize,
    channels: usize,
    window: usize,
    stride: usize,
) {
    let s_out = pooled_steps(steps, window, stride);
    assert_eq!(inp.len(), b * steps * channels, "pool_backward: inp size");
    assert_eq!(dinp.len(), b * steps * channels, "pool_backward: dinp size");
    assert_eq!(
        dout.len(),
        b * s_out * 3 * channels,
        "pool_backward: dout size"
    );
    let wt = T::c(window as f64);
    dinp.par_chunks_mut(steps * channels)
        .zip(
            dout.par_chunks(s_out * 3 * channels)
                .zip(inp.par_chunks(steps * channels)),
        )
        .for_each(|(dx, (g, x))| {
            for (s, g) in g.chunks_exact(3 * channels).enumerate() {
                for ch in 0..channels {
                    let start = s * stride;
                    let (_, imax, imin) = window_extremes(x, channels, ch, start, window);
                    for t in start..start + window {
                        dx[t * channels + ch] += g[ch] / wt;
                    }
                    dx[imax * channels + ch] += g[channels + ch];
                    dx[imin * channels + ch] += g[2 * channels + ch];
                }
            }
        });
}

/// f64 gradient checks of pooling: v1's non-overlapping window (3, stride 3) and an overlapping
/// one (3, stride 2). Uniform draws are tie-free, so max/min are differentiable at the inputs.
pub fn checks() -> Vec<CheckResult> {
    let (b, steps, channels) = (2, 7, 4);
    [(3, 3), (3, 2)]
        .into_iter()
        .map(|(window, stride)| {
            let name = format!("pool mean/max/min d={window} s={stride}");
            let mut rng = crate::util::rng::stream(7, &name);
            let s_out = pooled_steps(steps, window, stride);
            let x: Vec<f64> = (0..b * steps * channels)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let w: Vec<f64> = (0..b * s_out * 3 * channels)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let mut analytic = vec![0.0; x.len()];
            pool_backward(&mut analytic, &w, &x, b, steps, channels, window, stride);
            let shape = format!("[{b},{steps},{channels}]->[{b},{s_out},{}]", 3 * channels);
            let mut y = vec![0.0; w.len()];
            gradcheck::check(&name, &shape, &x, &analytic, |xp| {
                pool_forward(&mut y, xp, b, steps, channels, window, stride);
                gradcheck::weighted_sum(&y, &w)
            })
        })
        .collect()
}
