//! Keras GRU with `reset_after=True` (the TF2 default): gate order z, r, h; h₀ = 0; the layer
//! returns the last hidden state. W_ih `[I, 3H]`, W_hh `[H, 3H]`, bias `[2, 3H]` (row 0 the input
//! bias b_i, row 1 the recurrent bias b_r).
//!
//! Forward, per sample and step t:
//!   xz = x_t·W_ih + b_i,  hz = h_{t−1}·W_hh + b_r
//!   z = σ(xz_z + hz_z),  r = σ(xz_r + hz_r),  ĥ = tanh(xz_h + r⊙hz_h)
//!   h_t = z⊙h_{t−1} + (1 − z)⊙ĥ
//!
//! Backward, with dh_t from the step above (a = pre-activation):
//!   da_h = dh_t⊙(1 − z)⊙(1 − ĥ²),  da_z = dh_t⊙(h_{t−1} − ĥ)⊙z(1 − z),  da_r = da_h⊙hz_h⊙r(1 − r)
//!   dxz = [da_z, da_r, da_h],  dhz = [da_z, da_r, da_h⊙r]
//!   dh_{t−1} = dh_t⊙z + dhz·W_hhᵀ,  dW_hh += h_{t−1}ᵀ·dhz,  db_r += Σ dhz,
//!   dW_ih += x_tᵀ·dxz,  db_i += Σ dxz,  dx_t = dxz·W_ihᵀ

use crate::ops::gradcheck::CheckResult;
use crate::ops::recurrent::{
    backward_chunks, forward_chunks, input_projection, input_projection_backward, layer_checks,
    sigmoid_in_place, step_backward, step_forward, tanh_in_place, BackwardChunk,
};
use crate::ops::reduce::add_column_sums;
use crate::util::float::Float;

/// Floats saved per (sample, step): z, r, ĥ, hz_h (the recurrent candidate term, needed for
/// dr), h_t.
const SAVED: usize = 5;
const HZ_AT: usize = 3;
const H_AT: usize = 4;

/// Length of the cache `gru_forward` fills for `gru_backward`: `[B, S, 5H]`.
pub fn gru_cache_len(b: usize, s: usize, h: usize) -> usize {
    b * s * SAVED * h
}

/// GRU forward over `x [B, S, I]`; writes the last hidden state `h_out [B, H]` and the cache.
/// Per chunk of samples: one GEMM for x·W_ih over all steps, then one h·W_hh GEMM per step.
#[allow(clippy::too_many_arguments)]
pub fn gru_forward<T: Float>(
    h_out: &mut [T],
    cache: &mut [T],
    x: &[T],
    w_ih: &[T],
    w_hh: &[T],
    bias: &[T],
    b: usize,
    s: usize,
    i: usize,
    h: usize,
) {
    let (g, k) = (3 * h, SAVED * h);
    assert_eq!(w_ih.len(), i * g, "gru_forward: w_ih length");
    assert_eq!(w_hh.len(), h * g, "gru_forward: w_hh length");
    assert_eq!(bias.len(), 2 * g, "gru_forward: bias length");
    let (b_i, b_r) = bias.split_at(g);
    forward_chunks(h_out, cache, x, b, s, i, h, k, |nb, x, h_out, cache| {
        let zeros = vec![T::zero(); h];
        let mut xz = vec![T::zero(); nb * s * g];
        input_projection(&mut xz, g, x, w_ih, b_i, nb * s, i, g);
        // The recurrent term is kept apart from xz because r gates only its candidate part.
        let mut hz = vec![T::zero(); nb * g];
        for t in 0..s {
            for row in hz.chunks_exact_mut(g) {
                row.copy_from_slice(b_r);
            }
            if t > 0 {
                step_forward(
                    &mut hz,
                    g,
                    &cache[(t - 1) * k + H_AT * h..],
                    s * k,
                    w_hh,
                    nb,
                    h,
                    g,
                );
            }
            for n in 0..nb {
                let xr = &xz[(n * s + t) * g..][..g];
                let hr = &hz[n * g..][..g];
                let (prev, cur) = cache[n * s * k..][..s * k].split_at_mut(t * k);
                let h_prev = if t > 0 {
                    &prev[(t - 1) * k + H_AT * h..][..h]
                } else {
                    &zeros[..]
                };
                let cur = &mut cur[..k];
                for j in 0..2 * h {
                    cur[j] = xr[j] + hr[j];
                }
                sigmoid_in_place(&mut cur[..2 * h]);
                let (zr, rest) = cur.split_at_mut(2 * h);
                let (z, r) = zr.split_at(h);
                let (hh, rest) = rest.split_at_mut(h);
                let (hz_h, h_t) = rest.split_at_mut(h);
                hz_h.copy_from_slice(&hr[2 * h..]);
                for j in 0..h {
                    hh[j] = xr[2 * h + j] + r[j] * hz_h[j];
                }
                tanh_in_place(hh);
                for j in 0..h {
                    h_t[j] = z[j] * h_prev[j] + (T::one() - z[j]) * hh[j];
                }
            }
        }
        for n in 0..nb {
            h_out[n * h..][..h].copy_from_slice(&cache[(n * s + s - 1) * k + H_AT * h..][..h]);
        }
    });
}

/// GRU backward through time from `dh_out [B, H]` (gradient of the last hidden state).
/// Accumulates into `dx`, `dw_ih`, `dw_hh`, `dbias [2, 3H]`; weight gradients are summed per
/// fixed sample chunk and reduced in chunk order.
/// An empty `dx` (a null pointer to the CUDA kernel) skips the input gradient.
#[allow(clippy::too_many_arguments)]
pub fn gru_backward<T: Float>(
    dx: &mut [T],
    dw_ih: &mut [T],
    dw_hh: &mut [T],
    dbias: &mut [T],
    dh_out: &[T],
    cache: &[T],
    x: &[T],
    w_ih: &[T],
    w_hh: &[T],
    b: usize,
    s: usize,
    i: usize,
    h: usize,
) {
    let (g, k) = (3 * h, SAVED * h);
    assert_eq!(w_ih.len(), i * g, "gru_backward: w_ih length");
    assert_eq!(w_hh.len(), h * g, "gru_backward: w_hh length");
    assert_eq!(dw_ih.len(), i * g, "gru_backward: dw_ih length");
    assert_eq!(dw_hh.len(), h * g, "gru_backward: dw_hh length");
    assert_eq!(dbias.len(), 2 * g, "gru_backward: dbias length");
    backward_chunks(
        dx,
        dw_ih,
        dw_hh,
        dbias,
        dh_out,
        cache,
        x,
        b,
        s,
        i,
        h,
        k,
        |ch: BackwardChunk<'_, T>| {
            let BackwardChunk {
                nb,
                x,
                cache,
                dh_out,
                dx,
                dw_ih,
                dw_hh,
                dbias,
            } = ch;
            let (db_i, db_r) = dbias.split_at_mut(g);
            let one = T::one();
            let mut dxz = vec![T::zero(); nb * s * g];
            let mut dhz = vec![T::zero(); nb * g];
            let mut dh = dh_out.to_vec();
            let mut dh_prev = vec![T::zero(); nb * h];
            for t in (0..s).rev() {
                for n in 0..nb {
                    let cur = &cache[(n * s + t) * k..][..k];
                    let dxr = &mut dxz[(n * s + t) * g..][..g];
                    let dhr = &mut dhz[n * g..][..g];
                    for j in 0..h {
                        let h_prev = if t > 0 {
                            cache[(n * s + t - 1) * k + H_AT * h + j]
                        } else {
                            T::zero()
                        };
                        let (z, r, hh, hz_h) =
                            (cur[j], cur[h + j], cur[2 * h + j], cur[HZ_AT * h + j]);
                        let dhj = dh[n * h + j];
                        let da_h = dhj * (one - z) * (one - hh * hh);
                        let da_z = dhj * (h_prev - hh) * z * (one - z);
                        let da_r = da_h * hz_h * r * (one - r);
                        dxr[j] = da_z;
                        dxr[h + j] = da_r;
                        dxr[2 * h + j] = da_h;
                        dhr[j] = da_z;
                        dhr[h + j] = da_r;
                        dhr[2 * h + j] = da_h * r;
                        dh_prev[n * h + j] = dhj * z;
                    }
                }
                // b_r enters every step, h₀ = 0 means W_hh and dh_{−1} only from the second on.
                add_column_sums(db_r, &dhz, nb, g);
                if t > 0 {
                    step_backward(
                        &mut dh_prev,
                        dw_hh,
                        &dhz,
                        g,
                        &cache[(t - 1) * k + H_AT * h..],
                        s * k,
                        w_hh,
                        nb,
                        h,
                        g,
                    );
                    std::mem::swap(&mut dh, &mut dh_prev);
                }
            }
            input_projection_backward(dx, dw_ih, db_i, &dxz, x, w_ih, nb * s, i, g);
        },
    );
}

/// f64 central-difference checks of every GRU gradient (x, W_ih, W_hh, both bias rows).
pub fn checks() -> Vec<CheckResult> {
    layer_checks(
        "gru",
        3,
        2,
        gru_cache_len,
        gru_forward::<f64>,
        gru_backward::<f64>,
    )
}
