//! Forward of the feature layer, [`LANES`] samples at a time: each window's statistics are
//! loaded once per feature ([`LaneStats::load_window`]) and every op and pair reads them
//! (formulas in the module doc of `ops::ts_features`).

use super::op::Op;
use super::spec::FeatureSpec;
use super::window::{LaneStats, Plan, LANES};
use crate::util::float::Float;
use rayon::prelude::*;

/// Forward of the feature layer: `out[B, S, C]` from `inp[B, F, D]` (see the module doc of
/// `ops::ts_features`).
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
