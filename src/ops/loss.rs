//! Losses (docs/models.md): plain/weighted MSE, the v2.3 long-side weights and the v2.2 neutralized MSE.
//!
//! Each loss returns its value and WRITES `dpred = ∂L/∂ŷ` (a loss is the root of the backward
//! pass, so there is nothing to accumulate into).

use crate::util::float::Float;
use serde::{Deserialize, Serialize};

/// The loss options of v2.2 and v2.3; they combine freely.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LossConfig {
    /// v2.2: per-date projection of ŷ off [1, styles] before the MSE.
    pub neutralize: bool,
    /// v2.3: weight of the samples whose label is in the top half of their date.
    pub long_weight: Option<f64>,
}

/// Weighted MSE, `L = Σ wᵢ(yᵢ − ŷᵢ)² / N` (Keras `sample_weight` convention: divide by N, not Σw);
/// `∂L/∂ŷᵢ = 2wᵢ(ŷᵢ − yᵢ)/N`. `w = None` is plain MSE.
pub fn mse_loss<T: Float>(dpred: &mut [T], pred: &[T], y: &[T], w: Option<&[T]>, n: usize) -> T {
    assert!(pred.len() >= n && y.len() >= n && dpred.len() >= n);
    let inv_n = T::one() / T::c(n as f64);
    let mut loss = T::zero();
    for i in 0..n {
        let wi = w.map_or(T::one(), |w| w[i]);
        let e = pred[i] - y[i];
        loss += wi * e * e;
        dpred[i] = T::c(2.0) * wi * e * inv_n;
    }
    loss * inv_n
}

/// v2.3 long-side weights of one date's whole cross-section: `w = high` for the samples whose
/// label ranks in the top 50% (0-based descending rank `r < n/2`), 1 otherwise. Ties keep the
/// order of the input (a stable sort), so the weights are a pure function of the labels.
pub fn long_side_weights(y: &[f32], high: f32) -> Vec<f32> {
    let n = y.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| y[b].total_cmp(&y[a]));
    let mut w = vec![1.0; n];
    for (rank, &i) in order.iter().enumerate() {
        if (rank as f64) < n as f64 / 2.0 {
            w[i] = high;
        }
    }
    w
}

/// Outcome of [`neutralized_mse_loss`]: the loss and how many date groups were too small to
/// regress and fell back to plain MSE.
#[derive(Debug, Clone, Copy)]
pub struct NeutralizedLoss<T> {
    pub loss: T,
    pub fallback_groups: usize,
}

/// v2.2 neutralized MSE. For each date group g (rows `offsets[g]..offsets[g+1]`), with
/// `S = [1, styles]` (n_g × (K+1)), `A = SᵀS + λI`, `λ = 1e-6·tr(SᵀS)/(K+1)`:
/// `ŷ_res = P ŷ` with `P = I − S A⁻¹ Sᵀ`, and `L = Σ wᵢ(yᵢ − ŷ_resᵢ)²/N` over the whole batch.
/// P is symmetric, so `∂L/∂ŷ = P·∂L/∂ŷ_res`. Groups with `n_g < 2(K+1)` use ŷ unprojected.
/// `styles` is `[N, K]`; a non-finite exposure counts as 0 (the cross-sectional mean of a z-scored
/// style), which keeps the sample in the regression instead of dropping it from the loss.
#[allow(clippy::too_many_arguments)]
pub fn neutralized_mse_loss<T: Float>(
    dpred: &mut [T],
    pred: &[T],
    y: &[T],
    w: Option<&[T]>,
    styles: &[T],
    offsets: &[usize],
    n: usize,
    k: usize,
) -> NeutralizedLoss<T> {
    assert_eq!(*offsets.last().expect("offsets must not be empty"), n);
    assert!(styles.len() >= n * k);
    let mut res = pred[..n].to_vec();
    let mut fallback_groups = 0;
    for g in offsets.windows(2) {
        let (lo, hi) = (g[0], g[1]);
        if hi - lo < 2 * (k + 1) {
            fallback_groups += 1;
            continue;
        }
        project_out(&mut res[lo..hi], &styles[lo * k..hi * k], k);
    }
    let mut dres = vec![T::zero(); n];
    let loss = mse_loss(&mut dres, &res, y, w, n);
    for g in offsets.windows(2) {
        let (lo, hi) = (g[0], g[1]);
        if hi - lo >= 2 * (k + 1) {
            project_out(&mut dres[lo..hi], &styles[lo * k..hi * k], k);
        }
    }
    dpred[..n].copy_from_slice(&dres);
    NeutralizedLoss {
        loss,
        fallback_groups,
    }
}

/// `v ← v − S(SᵀS + λI)⁻¹Sᵀv` for `S = [1, styles]` of one group (`styles` is `[n, k]`).
pub fn project_out<T: Float>(v: &mut [T], styles: &[T], k: usize) {
    let p = k + 1;
    let s = |row: usize, col: usize| -> T {
        if col == 0 {
            T::one()
        } else {
            let x = styles[row * k + col - 1];
            if x.is_finite() {
                x
            } else {
                T::zero()
            }
        }
    };
    let mut a = vec![T::zero(); p * p];
    let mut rhs = vec![T::zero(); p];
    for (row, &vr) in v.iter().enumerate() {
        for i in 0..p {
            rhs[i] += s(row, i) * vr;
            for j in 0..=i {
                a[i * p + j] += s(row, i) * s(row, j);
            }
        }
    }
    let trace: T = (0..p).map(|i| a[i * p + i]).sum();
    let lambda = T::c(1e-6) * trace / T::c(p as f64);
    for i in 0..p {
        a[i * p + i] += lambda;
        for j in 0..i {
            a[j * p + i] = a[i * p + j];
        }
    }
    let beta = cholesky_solve(&mut a, &mut rhs, p);
    for (row, vr) in v.iter_mut().enumerate() {
        let fit: T = (0..p).map(|i| s(row, i) * beta[i]).sum();
        *vr -= fit;
    }
}

/// Solves `A x = b` for symmetric positive definite `A` (p×p, overwritten by its Cholesky factor).
/// The ridge term keeps A positive definite even for a constant style column.
pub fn cholesky_solve<T: Float>(a: &mut [T], b: &mut [T], p: usize) -> Vec<T> {
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        let d = d.max(T::min_positive_value()).sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * p + k] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in i + 1..p {
            s -= a[k * p + i] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
    b.to_vec()
}

/// f64 gradient checks of every loss against central differences of the loss value itself.
pub fn checks() -> Vec<crate::ops::gradcheck::CheckResult> {
    use rand::Rng;
    let mut rng = crate::util::rng::stream(11, "loss-checks");
    let (n, k) = (23, 3);
    let offsets = [0usize, 10, 13, 23]; // the 3-row group is below 2(K+1) = 8 rows: plain MSE
    let pred: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let styles: Vec<f64> = (0..n * k).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let yf: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let w: Vec<f64> = long_side_weights(&yf, 2.0)
        .into_iter()
        .map(f64::from)
        .collect();
    let mut out = Vec::new();
    for (name, weights) in [("mse", None), ("weighted_mse", Some(&w[..]))] {
        let mut d = vec![0.0; n];
        mse_loss(&mut d, &pred, &y, weights, n);
        let mut scratch = vec![0.0; n];
        out.push(crate::ops::gradcheck::check(
            name,
            &format!("[{n}]"),
            &pred,
            &d,
            |p| mse_loss(&mut scratch, p, &y, weights, n),
        ));
        let mut d = vec![0.0; n];
        neutralized_mse_loss(&mut d, &pred, &y, weights, &styles, &offsets, n, k);
        out.push(crate::ops::gradcheck::check(
            &format!("neutralized_{name}"),
            &format!("[{n}] K={k} groups=3"),
            &pred,
            &d,
            |p| neutralized_mse_loss(&mut scratch, p, &y, weights, &styles, &offsets, n, k).loss,
        ));
    }
    out
}
