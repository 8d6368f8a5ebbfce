//! What the LSTM and GRU share: fixed sample chunking, the input projection done as one GEMM
//! per chunk, the per-step recurrent GEMMs, and the ordered reduction of weight gradients.
//!
//! Layout conventions: `x` is `[B, S, I]`, the cache is `[B, S, K]` (K floats saved per sample
//! and step, layer-specific), gate pre-activations are `[nb, S, G]` per chunk. A step `t` of a
//! `[nb, S, W]` buffer is the `nb` rows at offset `t·W` with row stride `S·W`, which the strided
//! GEMMs below read in place.

use rand::Rng;
use rayon::prelude::*;

use crate::float::Float;
use crate::gradcheck::{check, weighted_sum, CheckResult};
use crate::ops::reduce::{add_column_sums, add_in_order};

/// Samples per chunk: a constant so weight-gradient partials do not depend on the thread count.
pub const SAMPLE_CHUNK: usize = 64;

/// `σ(x) = 1 / (1 + e^{−x})`; `σ' = σ(1 − σ)`.
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// One chunk's view of a recurrent layer's backward arguments, and its private
/// weight-gradient partials (zeroed on entry).
pub(crate) struct BackwardChunk<'a, T> {
    pub nb: usize,
    pub x: &'a [T],
    pub cache: &'a [T],
    pub dh_out: &'a [T],
    pub dx: &'a mut [T],
    pub dw_ih: &'a mut [T],
    pub dw_hh: &'a mut [T],
    pub dbias: &'a mut [T],
}

/// Runs `f(nb, x_chunk, h_out_chunk, cache_chunk)` over the fixed sample chunks in parallel.
/// Forward has no cross-sample reduction, so chunks are independent.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_chunks<T: Float>(
    h_out: &mut [T],
    cache: &mut [T],
    x: &[T],
    b: usize,
    s: usize,
    i: usize,
    h: usize,
    k: usize,
    f: impl Fn(usize, &[T], &mut [T], &mut [T]) + Sync,
) {
    assert!(s > 0 && i > 0 && h > 0, "recurrent: zero-sized layer");
    assert_eq!(x.len(), b * s * i, "recurrent: x length");
    assert_eq!(h_out.len(), b * h, "recurrent: h_out length");
    assert_eq!(cache.len(), b * s * k, "recurrent: cache length");
    h_out
        .par_chunks_mut(SAMPLE_CHUNK * h)
        .zip(cache.par_chunks_mut(SAMPLE_CHUNK * s * k))
        .zip(x.par_chunks(SAMPLE_CHUNK * s * i))
        .for_each(|((ho, ca), xc)| f(ho.len() / h, xc, ho, ca));
}

/// Runs `f` over the fixed sample chunks in parallel (each writes its own rows of `dx`), then
/// adds the chunks' weight-gradient partials into `dw_ih`, `dw_hh`, `dbias` in chunk order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_chunks<T: Float>(
    dx: &mut [T],
    dw_ih: &mut [T],
    dw_hh: &mut [T],
    dbias: &mut [T],
    dh_out: &[T],
    cache: &[T],
    x: &[T],
    b: usize,
    s: usize,
    i: usize,
    h: usize,
    k: usize,
    f: impl Fn(BackwardChunk<'_, T>) + Sync,
) {
    assert!(s > 0 && i > 0 && h > 0, "recurrent: zero-sized layer");
    assert_eq!(x.len(), b * s * i, "recurrent: x length");
    assert_eq!(dx.len(), b * s * i, "recurrent: dx length");
    assert_eq!(dh_out.len(), b * h, "recurrent: dh_out length");
    assert_eq!(cache.len(), b * s * k, "recurrent: cache length");
    let (n_ih, n_hh, n_b) = (dw_ih.len(), dw_hh.len(), dbias.len());
    let partials: Vec<Vec<T>> = dx
        .par_chunks_mut(SAMPLE_CHUNK * s * i)
        .zip(x.par_chunks(SAMPLE_CHUNK * s * i))
        .zip(cache.par_chunks(SAMPLE_CHUNK * s * k))
        .zip(dh_out.par_chunks(SAMPLE_CHUNK * h))
        .map(|(((dxc, xc), cc), dhc)| {
            let mut p = vec![T::zero(); n_ih + n_hh + n_b];
            let (p_ih, rest) = p.split_at_mut(n_ih);
            let (p_hh, p_b) = rest.split_at_mut(n_hh);
            f(BackwardChunk {
                nb: dhc.len() / h,
                x: xc,
                cache: cc,
                dh_out: dhc,
                dx: dxc,
                dw_ih: p_ih,
                dw_hh: p_hh,
                dbias: p_b,
            });
            p
        })
        .collect();
    add_in_order(&mut [dw_ih, dw_hh, dbias], &partials);
}

/// `z[rows, G] = x[rows, I] · W_ih[I, G] + bias[G]`: the input half of every gate for every
/// step of a chunk in one GEMM, since it does not depend on the recurrence.
pub(crate) fn input_projection<T: Float>(
    z: &mut [T],
    x: &[T],
    w_ih: &[T],
    bias: &[T],
    rows: usize,
    i: usize,
    g: usize,
) {
    assert_eq!(bias.len(), g, "input_projection: bias length");
    for row in z.chunks_exact_mut(g) {
        row.copy_from_slice(bias);
    }
    crate::float::matmul(z, x, w_ih, rows, i, g, true);
}

/// Backward of [`input_projection`]: `dx += dZ·W_ihᵀ`, `dW_ih += Xᵀ·dZ`, `dbias += Σ_rows dZ`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn input_projection_backward<T: Float>(
    dx: &mut [T],
    dw_ih: &mut [T],
    dbias: &mut [T],
    dz: &[T],
    x: &[T],
    w_ih: &[T],
    rows: usize,
    i: usize,
    g: usize,
) {
    crate::float::matmul_nt(dx, dz, w_ih, rows, g, i, true);
    crate::float::matmul_tn(dw_ih, x, dz, i, rows, g, true);
    add_column_sums(dbias, dz, rows, g);
}

/// `z[nb, G] += h_prev[nb, H] · W_hh[H, G]`, with `z` and `h_prev` read as rows `ldz` / `ldh`
/// apart (a step of a `[nb, S, ·]` buffer).
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_forward<T: Float>(
    z: &mut [T],
    ldz: usize,
    h_prev: &[T],
    ldh: usize,
    w_hh: &[T],
    nb: usize,
    h: usize,
    g: usize,
) {
    T::gemm(
        nb,
        h,
        g,
        T::one(),
        h_prev,
        ldh as isize,
        1,
        w_hh,
        g as isize,
        1,
        T::one(),
        z,
        ldz as isize,
        1,
    );
}

/// Backward of [`step_forward`] for one step: `dh_prev[nb, H] += dZ · W_hhᵀ` (contiguous
/// `dh_prev`) and `dW_hh += h_prevᵀ · dZ`, with `dz` and `h_prev` strided as in the forward.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_backward<T: Float>(
    dh_prev: &mut [T],
    dw_hh: &mut [T],
    dz: &[T],
    ldz: usize,
    h_prev: &[T],
    ldh: usize,
    w_hh: &[T],
    nb: usize,
    h: usize,
    g: usize,
) {
    // dh_prev = dZ[nb×G] · W_hhᵀ: W_hh is H×G row-major, so its transpose has strides (1, G).
    T::gemm(
        nb,
        g,
        h,
        T::one(),
        dz,
        ldz as isize,
        1,
        w_hh,
        1,
        g as isize,
        T::one(),
        dh_prev,
        h as isize,
        1,
    );
    // dW_hh[H×G] += h_prevᵀ · dZ: h_prevᵀ has strides (1, ldh).
    T::gemm(
        h,
        nb,
        g,
        T::one(),
        h_prev,
        1,
        ldh as isize,
        dz,
        ldz as isize,
        1,
        T::one(),
        dw_hh,
        g as isize,
        1,
    );
}

/// `*_forward(h_out, cache, x, w_ih, w_hh, bias, b, s, i, h)` in f64.
pub(crate) type ForwardF64 =
    fn(&mut [f64], &mut [f64], &[f64], &[f64], &[f64], &[f64], usize, usize, usize, usize);
/// `*_backward(dx, dw_ih, dw_hh, dbias, dh_out, cache, x, w_ih, w_hh, b, s, i, h)` in f64.
pub(crate) type BackwardF64 = fn(
    &mut [f64],
    &mut [f64],
    &mut [f64],
    &mut [f64],
    &[f64],
    &[f64],
    &[f64],
    &[f64],
    &[f64],
    usize,
    usize,
    usize,
    usize,
);

/// Central-difference checks of a recurrent layer's four gradients (x, W_ih, W_hh, bias) for a
/// layer with `gates` gates of width H and `bias_rows` bias rows of `gates·H`. The batch spans
/// two sample chunks so the ordered reduction is exercised too.
pub(crate) fn layer_checks(
    name: &str,
    gates: usize,
    bias_rows: usize,
    cache_len: fn(usize, usize, usize) -> usize,
    forward: ForwardF64,
    backward: BackwardF64,
) -> Vec<CheckResult> {
    let (b, s, i, h) = (SAMPLE_CHUNK + 3, 3, 3, 2);
    let g = gates * h;
    let mut rng = crate::rng::stream(7, &format!("check-{name}"));
    let mut draw = |n: usize, a: f64| (0..n).map(|_| rng.gen_range(-a..a)).collect::<Vec<f64>>();
    let x = draw(b * s * i, 1.0);
    let w_ih = draw(i * g, 0.8);
    let w_hh = draw(h * g, 0.8);
    let bias = draw(bias_rows * g, 0.5);
    let w = draw(b * h, 1.0);
    let run = |x: &[f64], w_ih: &[f64], w_hh: &[f64], bias: &[f64]| {
        let mut out = vec![0.0; b * h];
        let mut cache = vec![0.0; cache_len(b, s, h)];
        forward(&mut out, &mut cache, x, w_ih, w_hh, bias, b, s, i, h);
        (out, cache)
    };
    let (_, cache) = run(&x, &w_ih, &w_hh, &bias);
    let mut dx = vec![0.0; x.len()];
    let mut dw_ih = vec![0.0; w_ih.len()];
    let mut dw_hh = vec![0.0; w_hh.len()];
    let mut dbias = vec![0.0; bias.len()];
    backward(
        &mut dx, &mut dw_ih, &mut dw_hh, &mut dbias, &w, &cache, &x, &w_ih, &w_hh, b, s, i, h,
    );
    let loss = |x: &[f64], w_ih: &[f64], w_hh: &[f64], bias: &[f64]| {
        weighted_sum(&run(x, w_ih, w_hh, bias).0, &w)
    };
    vec![
        check(
            &format!("{name} dx"),
            &format!("[{b},{s},{i}]"),
            &x,
            &dx,
            |v| loss(v, &w_ih, &w_hh, &bias),
        ),
        check(
            &format!("{name} dW_ih"),
            &format!("[{i},{g}]"),
            &w_ih,
            &dw_ih,
            |v| loss(&x, v, &w_hh, &bias),
        ),
        check(
            &format!("{name} dW_hh"),
            &format!("[{h},{g}]"),
            &w_hh,
            &dw_hh,
            |v| loss(&x, &w_ih, v, &bias),
        ),
        check(
            &format!("{name} dbias"),
            &format!("[{bias_rows},{g}]"),
            &bias,
            &dbias,
            |v| loss(&x, &w_ih, &w_hh, v),
        ),
    ]
}
