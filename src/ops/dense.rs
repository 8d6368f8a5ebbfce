//! Dense (fully connected) layer: `out[B, O] = inp[B, I] · w[I, O] + bias[O]`.
//!
//! Derivative: `dinp = dout · wᵀ`, `dw = inpᵀ · dout`, `dbias = Σ_rows dout`.

use rand::Rng;

use crate::ops::gradcheck::{check, weighted_sum, CheckResult};
use crate::ops::reduce::add_column_sums;
use crate::util::float::{matmul, matmul_nt, matmul_tn, Float};

/// `out = inp·w + bias` (overwrites `out`).
pub fn dense_forward<T: Float>(
    out: &mut [T],
    inp: &[T],
    w: &[T],
    bias: &[T],
    b: usize,
    i: usize,
    o: usize,
) {
    assert_eq!(out.len(), b * o, "dense_forward: out length");
    assert_eq!(inp.len(), b * i, "dense_forward: inp length");
    assert_eq!(w.len(), i * o, "dense_forward: w length");
    assert_eq!(bias.len(), o, "dense_forward: bias length");
    for row in out.chunks_exact_mut(o) {
        row.copy_from_slice(bias);
    }
    matmul(out, inp, w, b, i, o, true);
}

/// Accumulates `dinp += dout·wᵀ`, `dw += inpᵀ·dout`, `dbias += Σ_rows dout`. One GEMM each:
/// the sum over the batch inside `dw` runs in a fixed order, so it is deterministic.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward<T: Float>(
    dinp: &mut [T],
    dw: &mut [T],
    dbias: &mut [T],
    dout: &[T],
    inp: &[T],
    w: &[T],
    b: usize,
    i: usize,
    o: usize,
) {
    assert_eq!(dinp.len(), b * i, "dense_backward: dinp length");
    assert_eq!(dw.len(), i * o, "dense_backward: dw length");
    assert_eq!(dout.len(), b * o, "dense_backward: dout length");
    assert_eq!(inp.len(), b * i, "dense_backward: inp length");
    assert_eq!(w.len(), i * o, "dense_backward: w length");
    matmul_nt(dinp, dout, w, b, o, i, true);
    matmul_tn(dw, inp, dout, i, b, o, true);
    add_column_sums(dbias, dout, b, o);
}

/// f64 central-difference checks of the dense layer's gradients (inp, w, bias).
pub fn checks() -> Vec<CheckResult> {
    let (b, i, o) = (5, 4, 3);
    let mut rng = crate::util::rng::stream(7, "check-dense");
    let mut draw = |n: usize| {
        (0..n)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect::<Vec<f64>>()
    };
    let (inp, w, bias, wt) = (draw(b * i), draw(i * o), draw(o), draw(b * o));
    let loss = |inp: &[f64], w: &[f64], bias: &[f64]| {
        let mut out = vec![0.0; b * o];
        dense_forward(&mut out, inp, w, bias, b, i, o);
        weighted_sum(&out, &wt)
    };
    let (mut dinp, mut dw, mut dbias) = (vec![0.0; b * i], vec![0.0; i * o], vec![0.0; o]);
    dense_backward(&mut dinp, &mut dw, &mut dbias, &wt, &inp, &w, b, i, o);
    vec![
        check("dense dinp", &format!("[{b},{i}]"), &inp, &dinp, |v| {
            loss(v, &w, &bias)
        }),
        check("dense dw", &format!("[{i},{o}]"), &w, &dw, |v| {
            loss(&inp, v, &bias)
        }),
        check("dense dbias", &format!("[{o}]"), &bias, &dbias, |v| {
            loss(&inp, &w, v)
        }),
    ]
}
