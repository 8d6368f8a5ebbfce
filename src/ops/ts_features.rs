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

use crate::error::{Error, Result};
use crate::ops::gradcheck::{self, CheckResult};
use crate::util::float::Float;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Relative variance below which a window counts as constant (docs/features.md).
const DEGENERATE_VAR: f64 = 1e-12;

/// One feature-extraction op. Declaration order is the normative channel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Corr,
    Cov,
    Stddev,
    Zscore,
    Return,
    DecayLinear,
    Mean,
}

impl Op {
    /// Every op in channel order.
    pub const ALL: [Op; 7] = [
        Op::Corr,
        Op::Cov,
        Op::Stddev,
        Op::Zscore,
        Op::Return,
        Op::DecayLinear,
        Op::Mean,
    ];

    /// The name used by `--ops`, checkpoints and channel names.
    pub fn name(self) -> &'static str {
        match self {
            Op::Corr => "corr",
            Op::Cov => "cov",
            Op::Stddev => "stddev",
            Op::Zscore => "zscore",
            Op::Return => "return",
            Op::DecayLinear => "decaylinear",
            Op::Mean => "mean",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Pair ops produce one channel per feature pair, the others one per feature.
    pub fn is_pair(self) -> bool {
        matches!(self, Op::Corr | Op::Cov)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`Op`]s; serialized as the list of their names in channel order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct OpSet(u8);

impl OpSet {
    /// All seven ops (the default model).
    pub const ALL: OpSet = OpSet((1 << Op::ALL.len()) - 1);
    /// The six ops of the public Python `alphanet` package: all but mean.
    pub const PEER6: OpSet = OpSet(OpSet::ALL.0 & !Op::Mean.bit());

    pub fn contains(self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }

    /// The ops of the set, in channel order.
    pub fn iter(self) -> impl Iterator<Item = Op> {
        Op::ALL.into_iter().filter(move |&op| self.contains(op))
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses the `--ops` value, a comma list such as `corr,cov,stddev,zscore,return,decaylinear`.
    pub fn parse(s: &str) -> Result<OpSet> {
        OpSet::from_names(s.split(','))
    }

    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<OpSet> {
        let accepted = || Op::ALL.map(Op::name).join(",");
        let mut set = OpSet(0);
        for name in names {
            let name = name.trim();
            let op = Op::from_name(name).ok_or_else(|| {
                Error::Config(format!(
                    "--ops: unknown op {name:?}; accepted (comma-separated): {}",
                    accepted()
                ))
            })?;
            set.0 |= op.bit();
        }
        if set.is_empty() {
            return Err(Error::Config(format!(
                "--ops: no op given; accepted (comma-separated): {}",
                accepted()
            )));
        }
        Ok(set)
    }
}

impl From<Op> for OpSet {
    fn from(op: Op) -> OpSet {
        OpSet(op.bit())
    }
}

impl fmt::Display for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iter().map(Op::name).collect::<Vec<_>>().join(","))
    }
}

impl fmt::Debug for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpSet({self})")
    }
}

impl TryFrom<Vec<String>> for OpSet {
    type Error = Error;
    fn try_from(names: Vec<String>) -> Result<OpSet> {
        OpSet::from_names(names.iter().map(String::as_str))
    }
}

impl From<OpSet> for Vec<String> {
    fn from(set: OpSet) -> Vec<String> {
        set.iter().map(|op| op.name().to_string()).collect()
    }
}

/// Shape and content of the feature layer: which ops, over which windows, on which pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub n_features: usize,
    pub days: usize,
    pub window: usize,
    pub stride: usize,
    pub ops: OpSet,
    /// Feature pairs `(i, j)`, `i < j`, of corr and cov, in channel order.
    pub pairs: Vec<(u16, u16)>,
}

impl FeatureSpec {
    /// Number of output steps `S = (days − window)/stride + 1`.
    pub fn steps(&self) -> usize {
        (self.days - self.window) / self.stride + 1
    }

    /// Number of output channels `C`.
    pub fn channels(&self) -> usize {
        self.ops.iter().map(|op| self.group_width(op)).sum()
    }

    /// Channel names in channel order, e.g. `corr(0,3)`, `stddev(4)`.
    pub fn channel_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.channels());
        for op in self.ops.iter() {
            if op.is_pair() {
                names.extend(
                    self.pairs
                        .iter()
                        .map(|(i, j)| format!("{}({i},{j})", op.name())),
                );
            } else {
                names.extend((0..self.n_features).map(|f| format!("{}({f})", op.name())));
            }
        }
        names
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(format!("feature spec: {msg}")));
        if self.n_features == 0 {
            return bad("n_features must be at least 1".into());
        }
        if self.window < 2 {
            return bad(format!(
                "window {} must be at least 2 (a statistic needs two days)",
                self.window
            ));
        }
        if self.window > self.days {
            return bad(format!(
                "window {} is longer than the {} days of a picture",
                self.window, self.days
            ));
        }
        if self.stride == 0 {
            return bad("stride must be at least 1".into());
        }
        let mut seen = std::collections::HashSet::new();
        for &(i, j) in &self.pairs {
            if !(i < j && (j as usize) < self.n_features) {
                return bad(format!(
                    "pair ({i},{j}) must satisfy i < j < n_features = {}",
                    self.n_features
                ));
            }
            if !seen.insert((i, j)) {
                return bad(format!("pair ({i},{j}) is listed twice"));
            }
        }
        if self.channels() == 0 {
            return bad(format!(
                "ops {} with {} pairs give no channels",
                self.ops,
                self.pairs.len()
            ));
        }
        Ok(())
    }

    fn group_width(&self, op: Op) -> usize {
        if op.is_pair() {
            self.pairs.len()
        } else {
            self.n_features
        }
    }

    /// First channel of each op's group (indexed by `Op as usize`), `None` for ops not in the set.
    fn offsets(&self) -> [Option<usize>; 7] {
        let mut offsets = [None; 7];
        let mut at = 0;
        for op in self.ops.iter() {
            offsets[op as usize] = Some(at);
            at += self.group_width(op);
        }
        offsets
    }
}

/// Every pair `(i, j)`, `i < j < n`, lexicographic.
pub fn all_pairs(n: usize) -> Vec<(u16, u16)> {
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i as u16, j as u16)))
        .collect()
}

/// Every pair among `features` (v2.1's sampled features), sorted, `i < j`, lexicographic.
pub fn pairs_among(features: &[u16]) -> Vec<(u16, u16)> {
    let mut f = features.to_vec();
    f.sort_unstable();
    f.dedup();
    let mut pairs = Vec::with_capacity(f.len() * f.len().saturating_sub(1) / 2);
    for (a, &i) in f.iter().enumerate() {
        pairs.extend(f[a + 1..].iter().map(|&j| (i, j)));
    }
    pairs
}

/// Per-call constants shared by every sample.
struct Plan<'a, T> {
    spec: &'a FeatureSpec,
    channels: usize,
    offsets: [Option<usize>; 7],
    /// `w_k = k / (d(d+1)/2)`, oldest first.
    decay: Vec<T>,
}

impl<'a, T: Float> Plan<'a, T> {
    fn new(spec: &'a FeatureSpec) -> Self {
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

    fn at(&self, op: Op) -> Option<usize> {
        self.offsets[op as usize]
    }
}

/// The statistics of one window of every feature of one sample, shared by all ops and pairs.
struct WindowStats<T> {
    d: usize,
    mean: Vec<T>,
    /// `[F × d]`, `x_k − x̄`.
    centered: Vec<T>,
    /// `sqrt(Sxx)`; products of norms rather than of `Sxx` keep large-scale features (volume) finite in f32.
    norm: Vec<T>,
    /// Variance below the degenerate threshold.
    flat: Vec<bool>,
    /// Backward scratch: per feature, the coefficient of its own centered series in its gradient.
    coef: Vec<T>,
}

impl<T: Float> WindowStats<T> {
    fn new(f: usize, d: usize) -> Self {
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
    fn load(&mut self, x: &[T], days: usize, start: usize) {
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

    fn centered(&self, f: usize) -> &[T] {
        &self.centered[f * self.d..][..self.d]
    }

    /// `Sxy` of features `i` and `j`.
    fn cross(&self, i: usize, j: usize) -> T {
        self.centered(i)
            .iter()
            .zip(self.centered(j))
            .map(|(&a, &b)| a * b)
            .sum()
    }

    /// `sqrt(Sxx·Syy)` when neither series is degenerate (corr is defined), else `None`.
    fn corr_denominator(&self, i: usize, j: usize) -> Option<T> {
        (!self.flat[i] && !self.flat[j]).then(|| self.norm[i] * self.norm[j])
    }

    /// Population standard deviation `σ = sqrt(Sxx/d)`.
    fn stddev(&self, f: usize) -> T {
        self.norm[f] / T::c(self.d as f64).sqrt()
    }
}

/// Samples the forward computes together, one per SIMD lane: every statistic is an array over
/// the lanes, so each inner loop is a vector operation (the per-sample loops over d = 10 days
/// and 15 features are too short and too odd-sized to vectorize).
const LANES: usize = 8;

type Lanes<T> = [T; LANES];

/// One group's pictures, transposed lanes-innermost, and its statistics for the current window.
struct LaneStats<T> {
    /// `[F × days]` values of the group's samples.
    x: Vec<Lanes<T>>,
    mean: Vec<Lanes<T>>,
    /// `[F × d]`, `x_k − x̄`.
    centered: Vec<Lanes<T>>,
    /// `sqrt(Sxx)` (see [`WindowStats::norm`]).
    norm: Vec<Lanes<T>>,
    /// `1/sqrt(Sxx)`, or 0 for a degenerate series: corr is then a product, with no division
    /// or branch in the pair loop, and comes out 0 for degenerate pairs by itself.
    inv_norm: Vec<Lanes<T>>,
    flat: Vec<[bool; LANES]>,
    /// One step's `[C]` channels.
    out: Vec<Lanes<T>>,
}

impl<T: Float> LaneStats<T> {
    fn new(plan: &Plan<T>) -> Self {
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
    fn load_pictures(&mut self, x: &[T], nb: usize) {
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
    fn load_window(&mut self, days: usize, d: usize, start: usize) {
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

/// Forward of the feature layer: `out[B, S, C]` from `inp[B, F, D]` (see the module doc).
pub fn ts_features_forward<T: Float>(out: &mut [T], inp: &[T], b: usize, spec: &FeatureSpec) {
    let (f, days) = (spec.n_features, spec.days);
    let (s, c) = (spec.steps(), spec.channels());
    assert_eq!(inp.len(), b * f * days, "ts_features_forward: inp size");
    assert_eq!(out.len(), b * s * c, "ts_features_forward: out size");
    let plan = Plan::new(spec);
    out.par_chunks_mut(LANES * s * c)
        .zip(inp.par_chunks(LANES * f * days))
        .for_each_init(
            || LaneStats::new(&plan),
            |stats, (o, x)| group_forward(o, x, &plan, stats),
        );
}

/// The forward of up to [`LANES`] samples.
fn group_forward<T: Float>(out: &mut [T], x: &[T], plan: &Plan<T>, g: &mut LaneStats<T>) {
    let spec = plan.spec;
    let (days, d, c) = (spec.days, spec.window, plan.channels);
    let nb = out.len() / (spec.steps() * c);
    g.load_pictures(x, nb);
    let dt = T::c(d as f64);
    let sqrt_d = dt.sqrt();
    let zero = T::zero();
    for step in 0..spec.steps() {
        let start = step * spec.stride;
        g.load_window(days, d, start);
        let LaneStats {
            x,
            mean,
            centered,
            norm,
            inv_norm,
            flat,
            out: o,
        } = &mut *g;
        for (p, &(i, j)) in spec.pairs.iter().enumerate() {
            let (i, j) = (i as usize, j as usize);
            let (ci, cj) = (&centered[i * d..][..d], &centered[j * d..][..d]);
            let mut sxy = [zero; LANES];
            for (a, b) in ci.iter().zip(cj) {
                for l in 0..LANES {
                    sxy[l] += a[l] * b[l];
                }
            }
            if let Some(off) = plan.at(Op::Corr) {
                for l in 0..LANES {
                    o[off + p][l] = sxy[l] * inv_norm[i][l] * inv_norm[j][l];
                }
            }
            if let Some(off) = plan.at(Op::Cov) {
                o[off + p] = sxy.map(|v| v / (dt - T::one()));
            }
        }
        for fi in 0..spec.n_features {
            let w = &x[fi * days + start..][..d];
            let sd = norm[fi].map(|v| v / sqrt_d);
            if let Some(off) = plan.at(Op::Stddev) {
                o[off + fi] = sd;
            }
            // Both sides are computed and one selected, which vectorizes (an inf or NaN on the
            // rejected side is never seen).
            if let Some(off) = plan.at(Op::Zscore) {
                for l in 0..LANES {
                    let z = mean[fi][l] / sd[l];
                    o[off + fi][l] = if flat[fi][l] { zero } else { z };
                }
            }
            if let Some(off) = plan.at(Op::Return) {
                for l in 0..LANES {
                    let r = w[d - 1][l] / w[0][l] - T::one();
                    o[off + fi][l] = if w[0][l] == zero { zero } else { r };
                }
            }
            if let Some(off) = plan.at(Op::DecayLinear) {
                let mut acc = [zero; LANES];
                for (&wk, xk) in plan.decay.iter().zip(w) {
                    for l in 0..LANES {
                        acc[l] += wk * xk[l];
                    }
                }
                o[off + fi] = acc;
            }
            if let Some(off) = plan.at(Op::Mean) {
                o[off + fi] = mean[fi];
            }
        }
        for (l, row) in out.chunks_exact_mut(spec.steps() * c).enumerate() {
            for (y, v) in row[step * c..][..c].iter_mut().zip(o.iter()) {
                *y = v[l];
            }
        }
    }
}

/// Backward of the feature layer: accumulates `∂L/∂inp` into `dinp[B, F, D]` given
/// `dout = ∂L/∂out` (`[B, S, C]`) and the forward's input. Overlapping windows (stride < window)
/// add their contributions.
pub fn ts_features_backward<T: Float>(
    dinp: &mut [T],
    dout: &[T],
    inp: &[T],
    b: usize,
    spec: &FeatureSpec,
) {
    let (f, days, d) = (spec.n_features, spec.days, spec.window);
    let (s, c) = (spec.steps(), spec.channels());
    assert_eq!(inp.len(), b * f * days, "ts_features_backward: inp size");
    assert_eq!(dinp.len(), b * f * days, "ts_features_backward: dinp size");
    assert_eq!(dout.len(), b * s * c, "ts_features_backward: dout size");
    let plan = Plan::new(spec);
    dinp.par_chunks_mut(f * days)
        .zip(dout.par_chunks(s * c).zip(inp.par_chunks(f * days)))
        .for_each_init(
            || WindowStats::new(f, d),
            |stats, (dx, (g, x))| sample_backward(dx, g, x, &plan, stats),
        );
}

fn sample_backward<T: Float>(
    dx: &mut [T],
    dout: &[T],
    x: &[T],
    plan: &Plan<T>,
    stats: &mut WindowStats<T>,
) {
    let spec = plan.spec;
    let (days, d) = (spec.days, spec.window);
    let dt = T::c(d as f64);
    let (corr, cov) = (plan.at(Op::Corr), plan.at(Op::Cov));
    let grad_of = |g: &[T], op: Op, idx: usize| plan.at(op).map_or(T::zero(), |off| g[off + idx]);
    for (step, g) in dout.chunks_exact(plan.channels).enumerate() {
        let start = step * spec.stride;
        stats.load(x, days, start);
        stats.coef.fill(T::zero());
        // Pairs: the partner's centered series enters directly; each series' own centered
        // values enter through `coef`, applied once per feature below.
        for (p, &(i, j)) in spec.pairs.iter().enumerate() {
            let (i, j) = (i as usize, j as usize);
            let mut partner = T::zero();
            if let (Some(off), Some(den)) = (corr, stats.corr_denominator(i, j)) {
                let r = stats.cross(i, j) / den;
                partner += g[off + p] / den;
                stats.coef[i] -= g[off + p] * r / (stats.norm[i] * stats.norm[i]);
                stats.coef[j] -= g[off + p] * r / (stats.norm[j] * stats.norm[j]);
            }
            if let Some(off) = cov {
                partner += g[off + p] / (dt - T::one());
            }
            // i < j, so feature i's window lies wholly before feature j's.
            let (lo, hi) = dx.split_at_mut(j * days + start);
            let (di, dj) = (&mut lo[i * days + start..][..d], &mut hi[..d]);
            let (ci, cj) = (stats.centered(i), stats.centered(j));
            for (((a, b), &xi), &xj) in di.iter_mut().zip(dj).zip(ci).zip(cj) {
                *a += partner * xj;
                *b += partner * xi;
            }
        }
        for fi in 0..spec.n_features {
            let (mean, sd) = (stats.mean[fi], stats.stddev(fi));
            let mut coef = stats.coef[fi];
            // `bias` is added to every day of the window.
            let mut bias = grad_of(g, Op::Mean, fi) / dt;
            if sd > T::zero() {
                coef += grad_of(g, Op::Stddev, fi) / (dt * sd);
            }
            if !stats.flat[fi] {
                let gz = grad_of(g, Op::Zscore, fi);
                let z = mean / sd;
                bias += gz / (dt * sd);
                coef -= gz * z / (dt * sd * sd);
            }
            let g_decay = grad_of(g, Op::DecayLinear, fi);
            let xw = &x[fi * days + start..][..d];
            let dw = &mut dx[fi * days + start..][..d];
            for ((dk, &ck), &wk) in dw.iter_mut().zip(stats.centered(fi)).zip(&plan.decay) {
                *dk += coef * ck + bias + g_decay * wk;
            }
            if xw[0] != T::zero() {
                let gr = grad_of(g, Op::Return, fi);
                dw[d - 1] += gr / xw[0];
                dw[0] -= gr * xw[d - 1] / (xw[0] * xw[0]);
            }
        }
    }
}

/// f64 gradient checks: each op alone (4 features, 3 pairs, D = 30, window 10, strides 10 and
/// 5), every op with every pair on 5 features, and exact zeros on degenerate windows.
pub fn checks() -> Vec<CheckResult> {
    let spec = |n_features, stride, ops, pairs| FeatureSpec {
        n_features,
        days: 30,
        window: 10,
        stride,
        ops,
        pairs,
    };
    let few = vec![(0, 1), (0, 3), (2, 3)];
    let mut results = Vec::new();
    for op in Op::ALL {
        for stride in [10, 5] {
            let name = format!("ts_features {} s={stride}", op.name());
            results.push(grad_check(&name, &spec(4, stride, op.into(), few.clone())));
        }
    }
    for stride in [10, 5] {
        let name = format!("ts_features all ops, all pairs s={stride}");
        results.push(grad_check(
            &name,
            &spec(5, stride, OpSet::ALL, all_pairs(5)),
        ));
    }
    results.push(degenerate_check());
    results
}

const CHECK_BATCH: usize = 2;

fn grad_check(name: &str, spec: &FeatureSpec) -> CheckResult {
    let mut rng = crate::util::rng::stream(7, name);
    let b = CHECK_BATCH;
    // Positive inputs away from zero keep return smooth; uniform draws keep every window non-degenerate.
    let x: Vec<f64> = (0..b * spec.n_features * spec.days)
        .map(|_| 1.0 + rng.gen::<f64>())
        .collect();
    let w: Vec<f64> = (0..b * spec.steps() * spec.channels())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let mut analytic = vec![0.0; x.len()];
    ts_features_backward(&mut analytic, &w, &x, b, spec);
    let shape = format!(
        "[{b},{},{}]->[{b},{},{}]",
        spec.n_features,
        spec.days,
        spec.steps(),
        spec.channels()
    );
    let mut y = vec![0.0; w.len()];
    gradcheck::check(name, &shape, &x, &analytic, |xp| {
        ts_features_forward(&mut y, xp, b, spec);
        gradcheck::weighted_sum(&y, &w)
    })
}

/// Feature 0 is constant (its stddev, zscore and every corr with it are degenerate) and feature 1
/// starts each window with 0 (its return is degenerate): those channels must be exactly 0 and
/// pass back exactly 0.
fn degenerate_check() -> CheckResult {
    let spec = FeatureSpec {
        n_features: 3,
        days: 30,
        window: 10,
        stride: 10,
        ops: OpSet::ALL,
        pairs: all_pairs(3),
    };
    let mut rng = crate::util::rng::stream(7, "ts_features degenerate");
    let mut x: Vec<f64> = (0..spec.n_features * spec.days)
        .map(|_| 1.0 + rng.gen::<f64>())
        .collect();
    x[..spec.days].fill(2.5);
    for step in 0..spec.steps() {
        x[spec.days + step * spec.stride] = 0.0;
    }
    let degenerate = [
        "corr(0,1)",
        "corr(0,2)",
        "stddev(0)",
        "zscore(0)",
        "return(1)",
    ];
    let names = spec.channel_names();
    let channels: Vec<Option<usize>> = degenerate
        .iter()
        .map(|d| names.iter().position(|n| n == d))
        .collect();
    let (s, c) = (spec.steps(), spec.channels());
    let mut y = vec![f64::NAN; s * c];
    ts_features_forward(&mut y, &x, 1, &spec);
    let mut dout = vec![0.0; s * c];
    let mut max_abs = 0.0f64;
    for &ch in channels.iter().flatten() {
        for step in 0..s {
            max_abs = max_abs.max(y[step * c + ch].abs());
            dout[step * c + ch] = rng.gen_range(0.5..1.5);
        }
    }
    let mut dx = vec![0.0; x.len()];
    ts_features_backward(&mut dx, &dout, &x, 1, &spec);
    max_abs = dx.iter().fold(max_abs, |m, v| m.max(v.abs()));
    CheckResult {
        name: "ts_features degenerate windows: value 0, grad 0".into(),
        shape: format!("[1,{},{}]->[1,{s},{c}]", spec.n_features, spec.days),
        max_abs,
        max_rel: max_abs,
        pass: max_abs == 0.0 && channels.iter().all(Option::is_some),
    }
}
