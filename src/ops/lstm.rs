//! Keras LSTM (TF2 defaults): gate order i, f, c, o; activation tanh, recurrent activation
//! sigmoid; h₀ = c₀ = 0; the layer returns the last hidden state.
//!
//! Forward, per sample and step t (W_ih `[I, 4H]`, W_hh `[H, 4H]`, bias `[4H]`):
//!   z_t = x_t·W_ih + h_{t−1}·W_hh + bias
//!   i = σ(z_i), f = σ(z_f), g = tanh(z_c), o = σ(z_o)
//!   c_t = f⊙c_{t−1} + i⊙g,  h_t = o⊙tanh(c_t)
//!
//! Backward through time, with dh_t from the step above and dc_t carried down:
//!   do = dh_t⊙tanh(c_t);  dc_t += dh_t⊙o⊙(1 − tanh²(c_t))
//!   di = dc_t⊙g, df = dc_t⊙c_{t−1}, dg = dc_t⊙i;  dc_{t−1} = dc_t⊙f
//!   dz = [di⊙i(1−i), df⊙f(1−f), dg⊙(1−g²), do⊙o(1−o)]
//!   dh_{t−1} = dz·W_hhᵀ,  dW_hh += h_{t−1}ᵀ·dz,  dW_ih += x_tᵀ·dz,  dbias += Σ dz,  dx_t = dz·W_ihᵀ

use crate::ops::gradcheck::CheckResult;
use crate::ops::recurrent::{
    backward_chunks, forward_chunks, input_projection, input_projection_backward, layer_checks,
    sigmoid_in_place, step_backward, step_forward, tanh_in_place, BackwardChunk,
};
use crate::util::float::Float;

/// Floats saved per (sample, step): the 4 activated gates, c_t, tanh(c_t), h_t.
const SAVED: usize = 7;
const C_AT: usize = 4;
const TC_AT: usize = 5;
const H_AT: usize = 6;

/// Length of the cache `lstm_forward` fills for `lstm_backward`: `[B, S, 7H]`.
pub fn lstm_cache_len(b: usize, s: usize, h: usize) -> usize {
    b * s * SAVED * h
}

/// LSTM forward over `x [B, S, I]`; writes the last hidden state `h_out [B, H]` and the cache.
/// Per chunk of samples: one GEMM for x·W_ih over all steps, then one h·W_hh GEMM per step.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward<T: Float>(
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
    let (g, k) = (4 * h, SAVED * h);
    assert_eq!(w_ih.len(), i * g, "lstm_forward: w_ih length");
    assert_eq!(w_hh.len(), h * g, "lstm_forward: w_hh length");
    forward_chunks(h_out, cache, x, b, s, i, h, k, |nb, x, h_out, cache| {
        // Gate pre-activations go straight into the cache's gate slots (rows K apart) and are
        // activated in place; h_{t−1} is copied out contiguous for the recurrent GEMM.
        let zeros = vec![T::zero(); h];
        let mut h_prev = vec![T::zero(); nb * h];
        input_projection(cache, k, x, w_ih, bias, nb * s, i, g);
        for t in 0..s {
            if t > 0 {
                for (n, hp) in h_prev.chunks_exact_mut(h).enumerate() {
                    hp.copy_from_slice(&cache[(n * s + t - 1) * k + H_AT * h..][..h]);
                }
                step_forward(&mut cache[t * k..], s * k, &h_prev, h, w_hh, nb, h, g);
            }
            for n in 0..nb {
                let (prev, cur) = cache[n * s * k..][..s * k].split_at_mut(t * k);
                let c_prev = if t > 0 {
                    &prev[(t - 1) * k + C_AT * h..][..h]
                } else {
                    &zeros[..]
                };
                let (gates, rest) = cur[..k].split_at_mut(4 * h);
                sigmoid_in_place(&mut gates[..2 * h]);
                tanh_in_place(&mut gates[2 * h..3 * h]);
                sigmoid_in_place(&mut gates[3 * h..]);
                let (ig, fg, gg, og) = split4(gates, h);
                let (c, rest) = rest.split_at_mut(h);
                let (tc, h_t) = rest.split_at_mut(h);
                for j in 0..h {
                    c[j] = fg[j] * c_prev[j] + ig[j] * gg[j];
                }
                tc.copy_from_slice(c);
                tanh_in_place(tc);
                for j in 0..h {
                    h_t[j] = og[j] * tc[j];
                }
            }
        }
        for n in 0..nb {
            h_out[n * h..][..h].copy_from_slice(&cache[(n * s + s - 1) * k + H_AT * h..][..h]);
        }
    });
}

/// LSTM backward through time from `dh_out [B, H]` (gradient of the last hidden state).
/// Accumulates into `dx`, `dw_ih`, `dw_hh`, `dbias`; weight gradients are summed per fixed
/// sample chunk (dW_ih = Xᵀ·dZ as one GEMM per chunk) and reduced in chunk order.
/// An empty `dx` (a null pointer to the CUDA kernel) skips the input gradient.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward<T: Float>(
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
    let (g, k) = (4 * h, SAVED * h);
    assert_eq!(w_ih.len(), i * g, "lstm_backward: w_ih length");
    assert_eq!(w_hh.len(), h * g, "lstm_backward: w_hh length");
    assert_eq!(dw_ih.len(), i * g, "lstm_backward: dw_ih length");
    assert_eq!(dw_hh.len(), h * g, "lstm_backward: dw_hh length");
    assert_eq!(dbias.len(), g, "lstm_backward: dbias length");
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
            let one = T::one();
            let zeros = vec![T::zero(); h];
            let mut dz = vec![T::zero(); nb * s * g];
            let mut dh = dh_out.to_vec();
            let mut dc = vec![T::zero(); nb * h];
            for t in (0..s).rev() {
                for n in 0..nb {
                    let cur = &cache[(n * s + t) * k..][..k];
                    let c_prev = if t > 0 {
                        &cache[(n * s + t - 1) * k + C_AT * h..][..h]
                    } else {
                        &zeros[..]
                    };
                    let (ig, fg, gg, og) = split4(&cur[..4 * h], h);
                    let tc = &cur[TC_AT * h..][..h];
                    let (dh, dc) = (&dh[n * h..][..h], &mut dc[n * h..][..h]);
                    let (dzr, rest) = dz[(n * s + t) * g..][..g].split_at_mut(h);
                    let (dzf, rest) = rest.split_at_mut(h);
                    let (dzg, dzo) = rest.split_at_mut(h);
                    for j in 0..h {
                        let dcj = dc[j] + dh[j] * og[j] * (one - tc[j] * tc[j]);
                        dzr[j] = dcj * gg[j] * ig[j] * (one - ig[j]);
                        dzf[j] = dcj * c_prev[j] * fg[j] * (one - fg[j]);
                        dzg[j] = dcj * ig[j] * (one - gg[j] * gg[j]);
                        dzo[j] = dh[j] * tc[j] * og[j] * (one - og[j]);
                        dc[j] = dcj * fg[j];
                    }
                }
                // h₀ = 0: the first step has no recurrent input, so nothing flows further down.
                if t > 0 {
                    dh.fill(T::zero());
                    step_backward(
                        &mut dh,
                        dw_hh,
                        &dz[t * g..],
                        s * g,
                        &cache[(t - 1) * k + H_AT * h..],
                        s * k,
                        w_hh,
                        nb,
                        h,
                        g,
                    );
                }
            }
            input_projection_backward(dx, dw_ih, dbias, &dz, x, w_ih, nb * s, i, g);
        },
    );
}

/// The four gate blocks `[i | f | c | o]` of one row of width 4H.
fn split4<T>(row: &[T], h: usize) -> (&[T], &[T], &[T], &[T]) {
    let (a, rest) = row.split_at(h);
    let (b, rest) = rest.split_at(h);
    let (c, d) = rest.split_at(h);
    (a, b, c, &d[..h])
}

/// f64 central-difference checks of every LSTM gradient (x, W_ih, W_hh, bias).
pub fn checks() -> Vec<CheckResult> {
    layer_checks(
        "lstm",
        4,
        1,
        lstm_cache_len,
        lstm_forward::<f64>,
        lstm_backward::<f64>,
    )
}
