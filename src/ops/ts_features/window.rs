//! The per-window statistics both passes share: the per-call [`Plan`], the scalar
//! [`WindowStats`] of one sample (the backward) and the lane-wise [`LaneStats`] of up to
//! [`LANES`] samples (the forward). They sit side by side because `LaneStats::load_window`
//! repeats `WindowStats::load`'s order of operations: a change to one belongs in the other.

use super::op::Op;
use super::spec::FeatureSpec;
use crate::util::float::Float;

/// Relative variance below which a window counts as constant (docs/features.md).
const DEGENERATE_VAR: f64 = 1e-12;

/// Per-call constants shared by every sample.
pub(super) struct Plan<'a, T> {
    pub(super) spec: &'a FeatureSpec,
    pub(super) channels: usize,
    offsets: [Option<usize>; 7],
    /// `w_k = k / (d(d+1)/2)`, oldest first.
    pub(super) decay: Vec<T>,
}

impl<'a, T: Float> Plan<'a, T> {
    pub(super) fn new(spec: &'a FeatureSpec) -> Self {
        debug_assert!(spec.validate().is_ok(), "invalid feature spec {spec:?}");
        let d = spec.window;
        let total = (d * (d + 1) / 2) as f64;
        let decay = (1..=d).map(|k| T::c(k as f64 / total)).collect();
        Plan {
            spec,
            channels: spec.channels(),
            offsets: spec.offsets(),
            decay,
        }
    }

    pub(super) fn at(&self, op: Op) -> Option<usize> {
        self.offsets[op as usize]
    }
}

/// The statistics of one window of every feature of one sample, shared by all ops and pairs.
pub(super) struct WindowStats<T> {
    d: usize,
    pub(super) mean: Vec<T>,
    /// `[F × d]`, `x_k − x̄`.
    centered: Vec<T>,
    /// `sqrt(Sxx)`; products of norms rather than of `Sxx` keep large-scale features (volume) finite in f32.
    pub(super) norm: Vec<T>,
    /// Variance below the degenerate threshold.
    pub(super) flat: Vec<bool>,
    /// Backward scratch: per feature, the coefficient of its own centered series in its gradient.
    pub(super) coef: Vec<T>,
}

impl<T: Float> WindowStats<T> {
    pub(super) fn new(f: usize, d: usize) -> Self {
        WindowStats {
            d,
            mean: vec![T::zero(); f],
            centered: vec![T::zero(); f * d],
            norm: vec![T::zero(); f],
            flat: vec![false; f],
            coef: vec![T::zero(); f],
        }
    }

    /// Fills the statistics of the window starting at day `start` of sample `x` (`[F × days]`).
    pub(super) fn load(&mut self, x: &[T], days: usize, start: usize) {
        let d = self.d;
        let dt = T::c(d as f64);
        for (f, c) in self.centered.chunks_exact_mut(d).enumerate() {
            let w = &x[f * days + start..][..d];
            let mean = w.iter().copied().sum::<T>() / dt;
            let mut sxx = T::zero();
            for (ck, &xk) in c.iter_mut().zip(w) {
                *ck = xk - mean;
                sxx += *ck * *ck;
            }
            self.mean[f] = mean;
            self.norm[f] = sxx.sqrt();
            self.flat[f] = sxx / dt < T::c(DEGENERATE_VAR) * (T::one() + mean * mean);
        }
    }

    pub(super) fn centered(&self, f: usize) -> &[T] {
        &self.centered[f * self.d..][..self.d]
    }

    /// `Sxy` of features `i` and `j`.
    pub(super) fn cross(&self, i: usize, j: usize) -> T {
        self.centered(i)
            .iter()
            .zip(self.centered(j))
            .map(|(&a, &b)| a * b)
            .sum()
    }

    /// `sqrt(Sxx·Syy)` when neither series is degenerate (corr is defined), else `None`.
    pub(super) fn corr_denominator(&self, i: usize, j: usize) -> Option<T> {
        (!self.flat[i] && !self.flat[j]).then(|| self.norm[i] * self.norm[j])
    }

    /// Population standard deviation `σ = sqrt(Sxx/d)`.
    pub(super) fn stddev(&self, f: usize) -> T {
        self.norm[f] / T::c(self.d as f64).sqrt()
    }
}

/// Samples the forward computes together, one per SIMD lane: every statistic is an array over
/// the lanes, so each inner loop is a vector operation (the per-sample loops over d = 10 days
/// and 15 features are too short and too odd-sized to vectorize).
pub(super) const LANES: usize = 8;

type Lanes<T> = [T; LANES];

/// One group's pictures, transposed lanes-innermost, and its statistics for the current window.
pub(super) struct LaneStats<T> {
    /// `[F × days]` values of the group's samples.
    pub(super) x: Vec<Lanes<T>>,
    pub(super) mean: Vec<Lanes<T>>,
    /// `[F × d]`, `x_k − x̄`.
    pub(super) centered: Vec<Lanes<T>>,
    /// `sqrt(Sxx)` (see [`WindowStats::norm`]).
    pub(super) norm: Vec<Lanes<T>>,
    /// `1/sqrt(Sxx)`, or 0 for a degenerate series: corr is then a product, with no division
    /// or branch in the pair loop, and comes out 0 for degenerate pairs by itself.
    pub(super) inv_norm: Vec<Lanes<T>>,
    pub(super) flat: Vec<[bool; LANES]>,
    /// One step's `[C]` channels.
    pub(super) out: Vec<Lanes<T>>,
}

impl<T: Float> LaneStats<T> {
    pub(super) fn new(plan: &Plan<T>) -> Self {
        let (f, days, d) = (plan.spec.n_features, plan.spec.days, plan.spec.window);
        let zero = [T::zero(); LANES];
        LaneStats {
            x: vec![zero; f * days],
            mean: vec![zero; f],
            centered: vec![zero; f * d],
            norm: vec![zero; f],
            inv_norm: vec![zero; f],
            flat: vec![[false; LANES]; f],
            out: vec![zero; plan.channels],
        }
    }

    /// Loads `nb ≤ LANES` pictures; spare lanes repeat the last one (computed, never written out).
    pub(super) fn load_pictures(&mut self, x: &[T], nb: usize) {
        let per = self.x.len();
        for l in 0..LANES {
            let src = &x[l.min(nb - 1) * per..][..per];
            for (q, &v) in self.x.iter_mut().zip(src) {
                q[l] = v;
            }
        }
    }

    /// Mean, centered values, norm and degeneracy of every feature over `[start, start + d)`,
    /// in the same order of operations as [`WindowStats::load`].
    pub(super) fn load_window(&mut self, days: usize, d: usize, start: usize) {
        let dt = T::c(d as f64);
        let tiny = T::c(DEGENERATE_VAR);
        for (fi, c) in self.centered.chunks_exact_mut(d).enumerate() {
            let w = &self.x[fi * days + start..][..d];
            let mut sum = [T::zero(); LANES];
            for wk in w {
                for l in 0..LANES {
                    sum[l] += wk[l];
                }
            }
            let mean = sum.map(|v| v / dt);
            let mut sxx = [T::zero(); LANES];
            for (ck, wk) in c.iter_mut().zip(w) {
                for l in 0..LANES {
                    ck[l] = wk[l] - mean[l];
                    sxx[l] += ck[l] * ck[l];
                }
            }
            let norm = sxx.map(|v| v.sqrt());
            for l in 0..LANES {
                let flat = sxx[l] / dt < tiny * (T::one() + mean[l] * mean[l]);
                let inv = T::one() / norm[l];
                self.flat[fi][l] = flat;
                self.inv_norm[fi][l] = if flat { T::zero() } else { inv };
            }
            self.mean[fi] = mean;
            self.norm[fi] = norm;
        }
    }
}
