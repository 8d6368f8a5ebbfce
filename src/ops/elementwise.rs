//! Elementwise ops: the activations (ReLU, tanh) and inverted dropout.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ops::gradcheck::{check, weighted_sum, CheckResult};
use crate::ops::kernel_consts::{ACT_RELU, ACT_TANH};
use crate::util::float::Float;

/// An elementwise activation `y = f(x)`. The CPU op ([`activation_forward`],
/// [`activation_backward`]) and the kernels of the same names (kernels/elementwise.cu) switch on
/// one code (ops/kernel_consts.rs), so every layer above (device, tape, models, the CUDA
/// cross-check, the gradient checks) takes a new activation unchanged. Adding one is three edits
/// (docs/engine.md#adding-an-activation): a variant here with its `f`, `f'` and name, its code in
/// kernel_consts.rs, and the same two formulas in the kernel's `activate`/`activation_grad`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(x, 0)`; `f' = [x > 0]`, 0 at the kink as in TF. The report's.
    #[default]
    Relu,
    /// `tanh x`; `f' = 1 − y²`.
    Tanh,
}

impl Activation {
    pub const ALL: [Activation; 2] = [Activation::Relu, Activation::Tanh];

    /// The code the kernels switch on.
    pub fn code(self) -> u32 {
        match self {
            Activation::Relu => ACT_RELU,
            Activation::Tanh => ACT_TANH,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    pub fn parse(s: &str) -> Option<Activation> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    fn f<T: Float>(self, x: T) -> T {
        match self {
            Activation::Relu if x > T::zero() => x,
            Activation::Relu => T::zero(),
            Activation::Tanh => x.tanh(),
        }
    }

    /// `d += g · f'(x)`, given `y = f(x)`. ReLU adds `g` or nothing (not `g · 0`, which would
    /// turn an infinite `g` into NaN).
    fn accumulate<T: Float>(self, d: &mut T, g: T, x: T, y: T) {
        match self {
            Activation::Relu if x > T::zero() => *d += g,
            Activation::Relu => {}
            Activation::Tanh => *d += g * (T::one() - y * y),
        }
    }
}

/// `out = f(inp)`.
pub fn activation_forward<T: Float>(act: Activation, out: &mut [T], inp: &[T], n: usize) {
    assert!(
        out.len() == n && inp.len() == n,
        "activation_forward: length"
    );
    for (y, &x) in out.iter_mut().zip(inp) {
        *y = act.f(x);
    }
}

/// `dinp += dout · f'(inp)`, with `out = f(inp)` from the forward pass.
pub fn activation_backward<T: Float>(
    act: Activation,
    dinp: &mut [T],
    dout: &[T],
    inp: &[T],
    out: &[T],
    n: usize,
) {
    assert!(
        dinp.len() == n && dout.len() == n && inp.len() == n && out.len() == n,
        "activation_backward: length"
    );
    for (((d, &g), &x), &y) in dinp.iter_mut().zip(dout).zip(inp).zip(out) {
        act.accumulate(d, g, x, y);
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

/// f64 central-difference checks of every activation's and dropout's input gradients. Inputs are
/// kept at least 0.1 from ReLU's kink; dropout uses a fixed seed, so its mask is a constant of the
/// loss.
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

    let mut out = Vec::new();
    for act in Activation::ALL {
        let forward = |v: &[f64]| {
            let mut y = vec![0.0; n];
            activation_forward(act, &mut y, v, n);
            y
        };
        let mut d = vec![0.0; n];
        activation_backward(act, &mut d, &w, &x, &forward(&x), n);
        out.push(check(
            &format!("{} dinp", act.name()),
            &format!("[{n}]"),
            &x,
            &d,
            |v| weighted_sum(&forward(v), &w),
        ));
    }

    let (p, seed) = (0.3, 11);
    let dropout = |v: &[f64]| {
        let (mut y, mut mask) = (vec![0.0; n], vec![0.0; n]);
        dropout_forward(&mut y, &mut mask, v, n, p, seed);
        (y, mask)
    };
    let mut ddrop = vec![0.0; n];
    dropout_backward(&mut ddrop, &w, &dropout(&x).1, n);
    out.push(check("dropout dinp", &format!("[{n}]"), &x, &ddrop, |v| {
        weighted_sum(&dropout(v).0, &w)
    }));
    out
}
