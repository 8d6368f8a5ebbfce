//! Batch normalization with Keras `BatchNormalization` semantics, per channel over all rows
//! (rows = batch × steps, channels last: `inp [R, C]`).
//!
//! Training: μ_c = Σ_r x_rc / R, σ²_c = Σ_r (x_rc − μ_c)² / R (biased), x̂ = (x − μ)/sqrt(σ² + ε),
//! y = γ·x̂ + β. The variance is the biased one because Keras' non-fused path, which it takes
//! for the 3-D `[batch, steps, channels]` inputs of this model, computes it with
//! `tf.nn.moments`; Bessel's correction is not applied to the moving variance either.
//! Inference: the same with the moving statistics in place of μ, σ².
//! Moving statistics: m ← momentum·m + (1 − momentum)·batch (Keras momentum 0.99).
//!
//! Derivative (batch statistics depend on x): with s₁ = Σ_r dy, s₂ = Σ_r dy·x̂,
//!   dβ = s₁,  dγ = s₂,  dx = γ/sqrt(σ² + ε) · (dy − s₁/R − x̂·s₂/R).
//!
//! Sums over rows are taken over fixed chunks of `ROW_CHUNK` rows, added in chunk order, so
//! the statistics do not depend on the thread count.

use rand::Rng;
use rayon::prelude::*;

use crate::ops::gradcheck::{check, weighted_sum, CheckResult};
use crate::ops::reduce::sum_over_chunks;
use crate::util::float::Float;

/// Rows per partial sum.
const ROW_CHUNK: usize = 256;

/// Training-mode forward: writes the batch `mean [C]` and biased `var [C]` (two-pass, centred)
/// and `out = γ·(x − μ)/sqrt(σ² + ε) + β`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward<T: Float>(
    out: &mut [T],
    mean: &mut [T],
    var: &mut [T],
    inp: &[T],
    gamma: &[T],
    beta: &[T],
    r: usize,
    c: usize,
    eps: f64,
) {
    assert!(r > 0 && c > 0, "batchnorm_forward: empty input");
    assert_eq!(inp.len(), r * c, "batchnorm_forward: inp length");
    assert!(
        mean.len() == c && var.len() == c,
        "batchnorm_forward: stats length"
    );
    let inv_r = T::c(1.0 / r as f64);
    let sum = sum_over_chunks(r, ROW_CHUNK, c, |rows, acc: &mut [T]| {
        for x in inp[rows.start * c..rows.end * c].chunks_exact(c) {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a += v;
            }
        }
    });
    for (m, s) in mean.iter_mut().zip(sum) {
        *m = s * inv_r;
    }
    let mean: &[T] = mean;
    let sq = sum_over_chunks(r, ROW_CHUNK, c, |rows, acc: &mut [T]| {
        for x in inp[rows.start * c..rows.end * c].chunks_exact(c) {
            for ((a, &v), &m) in acc.iter_mut().zip(x).zip(mean) {
                *a += (v - m) * (v - m);
            }
        }
    });
    for (v, s) in var.iter_mut().zip(sq) {
        *v = s * inv_r;
    }
    normalize(out, inp, gamma, beta, mean, var, r, c, eps);
}

/// Inference-mode forward: `out = γ·(x − m)/sqrt(v + ε) + β` with the moving statistics.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_inference<T: Float>(
    out: &mut [T],
    inp: &[T],
    gamma: &[T],
    beta: &[T],
    moving_mean: &[T],
    moving_var: &[T],
    r: usize,
    c: usize,
    eps: f64,
) {
    normalize(out, inp, gamma, beta, moving_mean, moving_var, r, c, eps);
}

/// `out = γ·(x − mean)/sqrt(var + ε) + β`, rows in parallel.
#[allow(clippy::too_many_arguments)]
fn normalize<T: Float>(
    out: &mut [T],
    inp: &[T],
    gamma: &[T],
    beta: &[T],
    mean: &[T],
    var: &[T],
    r: usize,
    c: usize,
    eps: f64,
) {
    assert!(
        out.len() == r * c && inp.len() == r * c,
        "batchnorm: out/inp length"
    );
    assert!(
        gamma.len() == c && beta.len() == c,
        "batchnorm: gamma/beta length"
    );
    assert!(mean.len() == c && var.len() == c, "batchnorm: stats length");
    let scale: Vec<T> = gamma
        .iter()
        .zip(var)
        .map(|(&g, &v)| g / (v + T::c(eps)).sqrt())
        .collect();
    out.par_chunks_mut(ROW_CHUNK * c)
        .zip(inp.par_chunks(ROW_CHUNK * c))
        .for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                for ((y, &x), ((&m, &sc), &b)) in
                    y.iter_mut().zip(x).zip(mean.iter().zip(&scale).zip(beta))
                {
                    *y = (x - m) * sc + b;
                }
            }
        });
}

/// Backward with batch statistics (the training-mode forward): accumulates `dinp`, `dgamma`,
/// `dbeta` from `dout`, using the `mean`, `var` the forward wrote. An empty `dinp` (a null
/// pointer to the CUDA kernel) skips the input gradient: the tape passes one when the input is
/// data, such as the feature layer's output, which nothing upstream needs a gradient of.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward<T: Float>(
    dinp: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    dout: &[T],
    inp: &[T],
    mean: &[T],
    var: &[T],
    gamma: &[T],
    r: usize,
    c: usize,
    eps: f64,
) {
    assert!(r > 0 && c > 0, "batchnorm_backward: empty input");
    assert!(
        (dinp.is_empty() || dinp.len() == r * c) && dout.len() == r * c && inp.len() == r * c,
        "batchnorm_backward: length"
    );
    assert!(
        dgamma.len() == c && dbeta.len() == c && gamma.len() == c,
        "batchnorm_backward: param length"
    );
    assert!(
        mean.len() == c && var.len() == c,
        "batchnorm_backward: stats length"
    );
    let inv_std: Vec<T> = var
        .iter()
        .map(|&v| T::one() / (v + T::c(eps)).sqrt())
        .collect();
    // One pass for both sums: s₁ = Σ dy in [0, C), s₂ = Σ dy·x̂ in [C, 2C).
    let sums = sum_over_chunks(r, ROW_CHUNK, 2 * c, |rows, acc: &mut [T]| {
        let (s1, s2) = acc.split_at_mut(c);
        let span = rows.start * c..rows.end * c;
        for (dy, x) in dout[span.clone()]
            .chunks_exact(c)
            .zip(inp[span].chunks_exact(c))
        {
            for (((s1, s2), (&dy, &x)), (&m, &is)) in s1
                .iter_mut()
                .zip(s2.iter_mut())
                .zip(dy.iter().zip(x))
                .zip(mean.iter().zip(&inv_std))
            {
                *s1 += dy;
                *s2 += dy * (x - m) * is;
            }
        }
    });
    let (s1, s2) = sums.split_at(c);
    for j in 0..c {
        dbeta[j] += s1[j];
        dgamma[j] += s2[j];
    }
    if dinp.is_empty() {
        return;
    }
    let inv_r = T::c(1.0 / r as f64);
    dinp.par_chunks_mut(c)
        .zip(dout.par_chunks(c))
        .zip(inp.par_chunks(c))
        .for_each(|((dx, dy), x)| {
            for j in 0..c {
                let xhat = (x[j] - mean[j]) * inv_std[j];
                dx[j] += gamma[j] * inv_std[j] * (dy[j] - s1[j] * inv_r - xhat * s2[j] * inv_r);
            }
        });
}

/// `moving ← momentum·moving + (1 − momentum)·batch` for both mean and variance.
pub fn batchnorm_update_moving<T: Float>(
    moving_mean: &mut [T],
    moving_var: &mut [T],
    mean: &[T],
    var: &[T],
    c: usize,
    momentum: f64,
) {
    assert!(
        moving_mean.len() == c && moving_var.len() == c,
        "batchnorm_update_moving: moving length"
    );
    assert!(
        mean.len() == c && var.len() == c,
        "batchnorm_update_moving: batch length"
    );
    let (m, keep) = (T::c(momentum), T::c(1.0 - momentum));
    for j in 0..c {
        moving_mean[j] = m * moving_mean[j] + keep * mean[j];
        moving_var[j] = m * moving_var[j] + keep * var[j];
    }
}

/// The parameter gradients of `BN(data) → recurrent layer`, folded so that the layer's input
/// gradient `dZ·W_ihᵀ` (`[B·S, G] × [G, C]`, the largest product of a step) is never formed.
/// With `a = γ·x̂ + β` the layer's input, `N = x̂ᵀ·dZ` (`nmat [C, G]`, the layer's `dW_ih` when it
/// runs on `x̂`) and `q = Σ_r dZ_r` (`db_local[..G]`, its input-side bias gradient):
///   `dγ_c += Σ_g W_ih[c,g]·N[c,g]`, `dβ_c += Σ_g W_ih[c,g]·q_g`, `dW_ih[c,g] += γ_c·N[c,g] + β_c·q_g`,
/// and `db += db_local` (all of it: the GRU's recurrent bias follows the input-side one).
/// Each channel's sums run over g in increasing order.
#[allow(clippy::too_many_arguments)]
pub fn bn_recurrent_fold<T: Float>(
    dgamma: &mut [T],
    dbeta: &mut [T],
    dwi: &mut [T],
    db: &mut [T],
    nmat: &[T],
    db_local: &[T],
    gamma: &[T],
    beta: &[T],
    wi: &[T],
    c: usize,
    g: usize,
) {
    assert!(nmat.len() == c * g && wi.len() == c * g && dwi.len() == c * g);
    assert!(db.len() == db_local.len() && db_local.len() >= g);
    let q = &db_local[..g];
    for ch in 0..c {
        let (wrow, nrow) = (&wi[ch * g..][..g], &nmat[ch * g..][..g]);
        let (mut sg, mut sb) = (dgamma[ch], dbeta[ch]);
        for k in 0..g {
            sg += wrow[k] * nrow[k];
            sb += wrow[k] * q[k];
            dwi[ch * g + k] += gamma[ch] * nrow[k] + beta[ch] * q[k];
        }
        dgamma[ch] = sg;
        dbeta[ch] = sb;
    }
    db.iter_mut().zip(db_local).for_each(|(a, &d)| *a += d);
}

/// f64 central-difference checks of the training-mode gradients (inp, γ, β). R spans two row
/// chunks so the ordered reduction is exercised too.
pub fn checks() -> Vec<CheckResult> {
    let (r, c, eps) = (ROW_CHUNK + 5, 3, 1e-3);
    let mut rng = crate::util::rng::stream(7, "check-batchnorm");
    let mut draw =
        |n: usize, lo: f64, hi: f64| (0..n).map(|_| rng.gen_range(lo..hi)).collect::<Vec<f64>>();
    let inp = draw(r * c, -2.0, 2.0);
    let gamma = draw(c, 0.5, 1.5);
    let beta = draw(c, -0.5, 0.5);
    let w = draw(r * c, -1.0, 1.0);
    let run = |inp: &[f64], gamma: &[f64], beta: &[f64]| {
        let (mut out, mut mean, mut var) = (vec![0.0; r * c], vec![0.0; c], vec![0.0; c]);
        batchnorm_forward(&mut out, &mut mean, &mut var, inp, gamma, beta, r, c, eps);
        (out, mean, var)
    };
    let (_, mean, var) = run(&inp, &gamma, &beta);
    // γ and β are checked through the call without an input gradient, dinp through the full one.
    let (mut dinp, mut unused_g, mut unused_b) = (vec![0.0; r * c], vec![0.0; c], vec![0.0; c]);
    batchnorm_backward(
        &mut dinp,
        &mut unused_g,
        &mut unused_b,
        &w,
        &inp,
        &mean,
        &var,
        &gamma,
        r,
        c,
        eps,
    );
    let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
    batchnorm_backward(
        &mut [],
        &mut dgamma,
        &mut dbeta,
        &w,
        &inp,
        &mean,
        &var,
        &gamma,
        r,
        c,
        eps,
    );
    let loss =
        |inp: &[f64], gamma: &[f64], beta: &[f64]| weighted_sum(&run(inp, gamma, beta).0, &w);
    vec![
        check("batchnorm dinp", &format!("[{r},{c}]"), &inp, &dinp, |v| {
            loss(v, &gamma, &beta)
        }),
        check(
            "batchnorm dgamma",
            &format!("[{c}]"),
            &gamma,
            &dgamma,
            |v| loss(&inp, v, &beta),
        ),
        check("batchnorm dbeta", &format!("[{c}]"), &beta, &dbeta, |v| {
            loss(&inp, &gamma, v)
        }),
    ]
}
