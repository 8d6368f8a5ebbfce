//! What the LSTM and GRU share: fixed sample chunking, the input projection done as one GEMM
//! per chunk, the per-step recurrent GEMMs, and the ordered reduction of weight gradients.
//!
//! Layout conventions: `x` is `[B, S, I]`, the cache is `[B, S, K]` (K floats saved per sample
//! and step, layer-specific), gate pre-activations are `[nb, S, G]` per chunk. A step `t` of a
//! `[nb, S, W]` buffer is the `nb` rows at offset `t·W` with row stride `S·W`, which the strided
//! GEMMs below read in place.

use rand::Rng;
use rayon::prelude::*;

use crate::ops::gradcheck::{check, weighted_sum, CheckResult};
use crate::ops::reduce::{add_column_sums, add_in_order};
use crate::util::float::Float;

/// The recurrent cell of v3: LSTM or GRU, on one fused gate layout (docs/models.md).
#[derive(Debug, Clone, Copy)]
pub enum Recurrent {
    Lstm,
    Gru,
}

impl Recurrent {
    /// Gates per unit: LSTM i, f, c, o; GRU z, r, h.
    pub fn gates(self) -> usize {
        match self {
            Recurrent::Lstm => 4,
            Recurrent::Gru => 3,
        }
    }
}

/// Samples per chunk: a constant so weight-gradient partials do not depend on the thread count.
pub const SAMPLE_CHUNK: usize = 64;

/// `σ(x) = 1 / (1 + e^{−x})`; `σ' = σ(1 − σ)`.
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// `x ← σ(x)` over a slice. In f32 (training) the exponential is [`exp_f32`], which the compiler
/// vectorizes; libm's scalar `expf`/`tanhf` were a quarter of a training step. f64 (gradient
/// checks) keeps the standard library's.
#[inline(always)]
pub(crate) fn sigmoid_in_place<T: Float>(x: &mut [T]) {
    match as_f32(x) {
        Some(x) => x.iter_mut().for_each(|v| *v = 1.0 / (1.0 + exp_f32(-*v))),
        None => x.iter_mut().for_each(|v| *v = sigmoid(*v)),
    }
}

/// `x ← tanh(x)` over a slice, as `1 − 2/(1 + e^{2x})` in f32 (absolute error below 2e-7,
/// saturating cleanly to ±1), the standard library's in f64.
#[inline(always)]
pub(crate) fn tanh_in_place<T: Float>(x: &mut [T]) {
    match as_f32(x) {
        Some(x) => x
            .iter_mut()
            .for_each(|v| *v = 1.0 - 2.0 / (1.0 + exp_f32(2.0 * *v))),
        None => x.iter_mut().for_each(|v| *v = v.tanh()),
    }
}

/// The slice as `f32` when `T` is `f32`: the one place the generic ops take a precision-specific
/// path, so that the f64 checks still exercise the plain formulas.
#[inline(always)]
fn as_f32<T: Float>(x: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32, so the slice's layout is that of [f32].
        .then(|| unsafe { &mut *(x as *mut [T] as *mut [f32]) })
}

/// `e^x` in f32 without branches, calls or float-to-int conversions (Cephes' `expf`:
/// x = n·ln2 + f, |f| ≤ ln2/2, a degree-6 polynomial for e^f, 2ⁿ built in the exponent bits), so
/// loops over it vectorize. Relative error a few ulps; the input is clamped to the finite range,
/// NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    // t = 1.5·2²³ + n: adding the constant rounds x·log2(e) to the nearest integer n (default
    // rounding mode) and leaves n in the low mantissa bits of t, whence 2ⁿ by integer arithmetic.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let f = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = (((((1.987_569_1e-4 * f + 1.398_199_9e-3) * f + 8.333_452e-3) * f + 4.166_579_6e-2)
        * f
        + 1.666_666_5e-1)
        * f
        + 0.5)
        * f
        * f
        + f
        + 1.0;
    let two_n = f32::from_bits(t.to_bits().wrapping_sub(SHIFT.to_bits() - 127) << 23);
    p * two_n
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
    assert!(
        dx.is_empty() || dx.len() == b * s * i,
        "recurrent: dx length"
    );
    assert_eq!(dh_out.len(), b * h, "recurrent: dh_out length");
    assert_eq!(cache.len(), b * s * k, "recurrent: cache length");
    let (n_ih, n_hh, n_b) = (dw_ih.len(), dw_hh.len(), dbias.len());
    // An empty dx gives each chunk an empty dx: no input gradient anywhere.
    let dx_chunks: Vec<&mut [T]> = if dx.is_empty() {
        (0..b.div_ceil(SAMPLE_CHUNK))
            .map(|_| Default::default())
            .collect()
    } else {
        dx.chunks_mut(SAMPLE_CHUNK * s * i).collect()
    };
    let partials: Vec<Vec<T>> = dx_chunks
        .into_par_iter()
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

/// `z[rows, G] = x[rows, I] · W_ih[I, G] + bias[G]`, rows of `z` being `ldz` apart: the input
/// half of every gate for every step of a chunk in one GEMM, since it does not depend on the
/// recurrence.
#[allow(clippy::too_many_arguments)]
pub(crate) fn input_projection<T: Float>(
    z: &mut [T],
    ldz: usize,
    x: &[T],
    w_ih: &[T],
    bias: &[T],
    rows: usize,
    i: usize,
    g: usize,
) {
    assert_eq!(bias.len(), g, "input_projection: bias length");
    for r in 0..rows {
        z[r * ldz..][..g].copy_from_slice(bias);
    }
    T::gemm(
        rows,
        i,
        g,
        T::one(),
        x,
        i as isize,
        1,
        w_ih,
        g as isize,
        1,
        T::one(),
        z,
        ldz as isize,
        1,
    );
}

/// Backward of [`input_projection`]: `dx += dZ·W_ihᵀ` (skipped when `dx` is empty),
/// `dW_ih += Xᵀ·dZ`, `dbias += Σ_rows dZ`.
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
    if !dx.is_empty() {
        crate::util::float::matmul_nt(dx, dz, w_ih, rows, g, i, true);
    }
    crate::util::float::matmul_tn(dw_ih, x, dz, i, rows, g, true);
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
    let mut rng = crate::util::rng::stream(7, &format!("check-{name}"));
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
    // dx from the full call, the weights from the call without an input gradient (the one
    // training makes when a BatchNorm of data feeds the layer).
    let mut dx = vec![0.0; x.len()];
    let (mut unused_ih, mut unused_hh, mut unused_b) = (
        vec![0.0; w_ih.len()],
        vec![0.0; w_hh.len()],
        vec![0.0; bias.len()],
    );
    backward(
        &mut dx,
        &mut unused_ih,
        &mut unused_hh,
        &mut unused_b,
        &w,
        &cache,
        &x,
        &w_ih,
        &w_hh,
        b,
        s,
        i,
        h,
    );
    let mut dw_ih = vec![0.0; w_ih.len()];
    let mut dw_hh = vec![0.0; w_hh.len()];
    let mut dbias = vec![0.0; bias.len()];
    backward(
        &mut [],
        &mut dw_ih,
        &mut dw_hh,
        &mut dbias,
        &w,
        &cache,
        &x,
        &w_ih,
        &w_hh,
        b,
        s,
        i,
        h,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 fast paths against f64 references over the whole useful range and beyond it.
    #[test]
    fn fast_activations_match_std() {
        let xs: Vec<f32> = (-40_000..=40_000).map(|k| k as f32 * 5e-4).collect();
        let (mut worst_exp, mut worst_sig, mut worst_tanh) = (0.0f64, 0.0f64, 0.0f64);
        for &x in &xs {
            let e = (x as f64).exp();
            worst_exp = worst_exp.max((exp_f32(x) as f64 - e).abs() / e);
        }
        let (mut sig, mut th) = (xs.clone(), xs.clone());
        sigmoid_in_place(&mut sig);
        tanh_in_place(&mut th);
        for ((&x, &s), &t) in xs.iter().zip(&sig).zip(&th) {
            let x = x as f64;
            worst_sig = worst_sig.max((s as f64 - 1.0 / (1.0 + (-x).exp())).abs());
            worst_tanh = worst_tanh.max((t as f64 - x.tanh()).abs());
        }
        assert!(worst_exp < 4e-7, "exp_f32 relative error {worst_exp:e}");
        assert!(worst_sig < 2e-7, "sigmoid absolute error {worst_sig:e}");
        assert!(worst_tanh < 3e-7, "tanh absolute error {worst_tanh:e}");
        let mut edge = [f32::NAN, -1e30, 1e30, 0.0];
        tanh_in_place(&mut edge);
        assert!(edge[0].is_nan());
        assert_eq!(&edge[1..], &[-1.0, 1.0, 0.0]);
        let mut edge = [-1e30f32, 1e30];
        sigmoid_in_place(&mut edge);
        // The clamp leaves σ(−∞) at e^{−88}, a denormal: 0 for every purpose here.
        assert!(
            edge[0] >= 0.0 && edge[0] < 1e-37 && edge[1] == 1.0,
            "{edge:?}"
        );
    }
}
