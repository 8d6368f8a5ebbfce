//! Elementwise ops: ReLU and inverted dropout.

use rand::Rng;

use crate::ops::gradcheck::{check, weighted_sum, CheckResult};
use crate::util::float::Float;

/// `out = max(x, 0)`.
pub fn relu_forward<T: Float>(out: &mut [T], inp: &[T], n: usize) {
    assert!(out.len() == n && inp.len() == n, "relu_forward: length");
    for (y, &x) in out.iter_mut().zip(inp) {
        *y = if x > T::zero() { x } else { T::zero() };
    }
}

/// `dinp += dout · [x > 0]` (the subgradient at 0 is taken as 0, as in TF).
pub fn relu_backward<T: Float>(dinp: &mut [T], dout: &[T], inp: &[T], n: usize) {
    assert!(
        dinp.len() == n && dout.len() == n && inp.len() == n,
        "relu_backward: length"
    );
    for ((d, &g), &x) in dinp.iter_mut().zip(dout).zip(inp) {
        if x > T::zero() {
            *d += g;
        }
    }
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64: `z + φ`, then its avalanche mix (a bijection of 64 bits, so distinct inputs never
/// collide).
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) for element `k` under `seed`: `splitmix64(seed ⊕ k·φ)`, top 53 bits as
/// an f64. A pure function of (seed, k) — no generator state — so a CUDA thread for element k
/// computes the same number with the same integer ops, whatever the launch shape.
pub fn dropout_uniform(seed: u64, k: u64) -> f64 {
    (splitmix64(seed ^ k.wrapping_mul(GOLDEN)) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Inverted dropout: `mask[k] = 1/(1−p)` if `u(seed, k) ≥ p` else 0, `out = inp ⊙ mask`, so
/// the expected activation is unchanged and inference is the identity. `p = 0` keeps all
/// (mask 1). The mask is saved for the backward. Requires `0 ≤ p < 1` (config validates it).
pub fn dropout_forward<T: Float>(
    out: &mut [T],
    mask: &mut [T],
    inp: &[T],
    n: usize,
    p: f64,
    seed: u64,
) {
    assert!(
        out.len() == n && mask.len() == n && inp.len() == n,
        "dropout_forward: length"
    );
    assert!(
        (0.0..1.0).contains(&p),
        "dropout_forward: p = {p} outside [0, 1)"
    );
    let scale = T::c(1.0 / (1.0 - p));
    for (k, ((y, m), &x)) in out.iter_mut().zip(mask.iter_mut()).zip(inp).enumerate() {
        *m = if dropout_uniform(seed, k as u64) >= p {
            scale
        } else {
            T::zero()
        };
        *y = x * *m;
    }
}

/// `dinp += dout ⊙ mask` (the output is linear in the input with slope mask).
pub fn dropout_backward<T: Float>(dinp: &mut [T], dout: &[T], mask: &[T], n: usize) {
    assert!(
        dinp.len() == n && dout.len() == n && mask.len() == n,
        "dropout_backward: length"
    );
    for ((d, &g), &m) in dinp.iter_mut().zip(dout).zip(mask) {
        *d += g * m;
    }
}

/// `out[r, col + j] = inp[r, j]`: one `[rows, width]` input placed at column `col` of the
/// `[rows, total]` concatenation (each input of a concat is one call).
pub fn concat_forward<T: Float>(
    out: &mut [T],
    inp: &[T],
    rows: usize,
    width: usize,
    total: usize,
    col: usize,
) {
    assert!(
        col + width <= total && out.len() == rows * total && inp.len() == rows * width,
        "concat_forward: sizes"
    );
    for (o, x) in out.chunks_exact_mut(total).zip(inp.chunks_exact(width)) {
        o[col..col + width].copy_from_slice(x);
    }
}

/// `dinp[r, j] += dout[r, col + j]` (the concatenation is a copy: its slope is 1).
pub fn concat_backward<T: Float>(
    dinp: &mut [T],
    dout: &[T],
    rows: usize,
    width: usize,
    total: usize,
    col: usize,
) {
    assert!(
        col + width <= total && dout.len() == rows * total && dinp.len() == rows * width,
        "concat_backward: sizes"
    );
    for (d, g) in dinp.chunks_exact_mut(width).zip(dout.chunks_exact(total)) {
        d.iter_mut()
            .zip(&g[col..col + width])
            .for_each(|(a, &b)| *a += b);
    }
}

/// f64 central-difference checks of ReLU and dropout input gradients. ReLU inputs are kept
/// at least 0.1 from the kink; dropout uses a fixed seed, so its mask is a constant of the loss.
pub fn checks() -> Vec<CheckResult> {
    let n = 40;
    let mut rng = crate::util::rng::stream(7, "check-elementwise");
    let x: Vec<f64> = (0..n)
        .map(|_| {
            let v: f64 = rng.gen_range(0.1..1.0);
            if rng.gen_bool(0.5) {
                v
            } else {
                -v
            }
        })
        .collect();
    let w: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();

    let mut drelu = vec![0.0; n];
    relu_backward(&mut drelu, &w, &x, n);
    let relu_loss = |v: &[f64]| {
        let mut y = vec![0.0; n];
        relu_forward(&mut y, v, n);
        weighted_sum(&y, &w)
    };

    let (p, seed) = (0.3, 11);
    let dropout = |v: &[f64]| {
        let (mut y, mut mask) = (vec![0.0; n], vec![0.0; n]);
        dropout_forward(&mut y, &mut mask, v, n, p, seed);
        (y, mask)
    };
    let mut ddrop = vec![0.0; n];
    dropout_backward(&mut ddrop, &w, &dropout(&x).1, n);

    vec![
        check("relu dinp", &format!("[{n}]"), &x, &drelu, relu_loss),
        check("dropout dinp", &format!("[{n}]"), &x, &ddrop, |v| {
            weighted_sum(&dropout(v).0, &w)
        }),
    ]
}
