//! Backward of the feature layer, one sample at a time: each window's statistics are loaded
//! once ([`WindowStats::load`]) and every op's gradient (the table of the module doc of
//! `ops::ts_features`) is accumulated into the window's days.

use super::op::Op;
use super::spec::FeatureSpec;
use super::window::{Plan, WindowStats};
use crate::util::float::Float;
use rayon::prelude::*;

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
