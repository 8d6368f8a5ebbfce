//! The kernels' per-thread maths (kernels/*.cuh, compiled for the host by build.rs) against
//! straightforward f64 formulas: every feature op's value, and its derivative against central
//! differences of the f64 formula; the LSTM/GRU cells; the Adam element; the dropout hash; the
//! small Cholesky solve.

use alphanet::cuda::host_maths::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(purpose: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(0x6b65726e ^ purpose)
}

/// f32 kernel result against an f64 reference: |a − r| ≤ atol + rtol·|r|.
fn close(what: &str, a: f32, r: f64, atol: f64, rtol: f64) {
    assert!(
        (a as f64 - r).abs() <= atol + rtol * r.abs(),
        "{what}: kernel {a} vs reference {r}"
    );
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn centered_ss(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum()
}

fn flat(x: &[f64]) -> bool {
    let m = mean(x);
    centered_ss(x) / (x.len() as f64) < 1e-12 * (1.0 + m * m)
}

fn cov_sum(x: &[f64], y: &[f64]) -> f64 {
    let (mx, my) = (mean(x), mean(y));
    x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum()
}

/// SPEC §4's formulas in f64.
fn reference(op: u32, x: &[f64], y: &[f64]) -> f64 {
    let d = x.len() as f64;
    match op {
        OP_CORR if flat(x) || flat(y) => 0.0,
        OP_CORR => cov_sum(x, y) / (centered_ss(x) * centered_ss(y)).sqrt(),
        OP_COV => cov_sum(x, y) / (d - 1.0),
        OP_STDDEV => (centered_ss(x) / d).sqrt(),
        OP_ZSCORE if flat(x) => 0.0,
        OP_ZSCORE => mean(x) / (centered_ss(x) / d).sqrt(),
        OP_RETURN if x[0] == 0.0 => 0.0,
        OP_RETURN => x[x.len() - 1] / x[0] - 1.0,
        OP_DECAYLINEAR => {
            x.iter()
                .enumerate()
                .map(|(k, v)| (k + 1) as f64 * v)
                .sum::<f64>()
                / (d * (d + 1.0) / 2.0)
        }
        _ => mean(x),
    }
}

fn numeric_grad(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|k| {
            let (mut p, mut m) = (x.to_vec(), x.to_vec());
            p[k] += h;
            m[k] -= h;
            (f(&p) - f(&m)) / (2.0 * h)
        })
        .collect()
}

fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

const SINGLE_OPS: [u32; 5] = [OP_STDDEV, OP_ZSCORE, OP_RETURN, OP_DECAYLINEAR, OP_MEAN];

#[test]
fn ts_ops_values_and_derivatives_on_random_windows() {
    let mut r = rng(1);
    for trial in 0..200 {
        let d = [10, 5, 3][trial % 3];
        // Away from zero and with spread, as feature values are; offset so zscore is not tiny.
        let x: Vec<f32> = (0..d).map(|_| r.gen_range(0.5f32..2.0)).collect();
        let y: Vec<f32> = (0..d).map(|_| r.gen_range(-1.0f32..3.0)).collect();
        let (x64, y64) = (to64(&x), to64(&y));
        for op in [OP_CORR, OP_COV] {
            let (v, gx, gy) = ts_pair(op, &x, &y);
            close(
                &format!("op {op} value"),
                v,
                reference(op, &x64, &y64),
                1e-5,
                1e-4,
            );
            let nx = numeric_grad(|p| reference(op, p, &y64), &x64);
            let ny = numeric_grad(|p| reference(op, &x64, p), &y64);
            for k in 0..d {
                close(&format!("op {op} d/dx{k}"), gx[k], nx[k], 1e-4, 1e-3);
                close(&format!("op {op} d/dy{k}"), gy[k], ny[k], 1e-4, 1e-3);
            }
        }
        for op in SINGLE_OPS {
            let (v, gx) = ts_single(op, &x);
            close(
                &format!("op {op} value"),
                v,
                reference(op, &x64, &x64),
                1e-5,
                1e-4,
            );
            let nx = numeric_grad(|p| reference(op, p, p), &x64);
            for k in 0..d {
                close(
                    &format!("op {op} d/dx{k} (d = {d})"),
                    gx[k],
                    nx[k],
                    1e-4,
                    1e-3,
                );
            }
        }
    }
}

#[test]
fn degenerate_windows_give_zero_and_no_gradient() {
    let constant = [1.5f32; 10];
    let nearly: Vec<f32> = (0..10)
        .map(|k| 1000.0 + if k == 3 { 1e-4 } else { 0.0 })
        .collect();
    let other: Vec<f32> = (0..10).map(|k| (k as f32).sin()).collect();
    for x in [&constant[..], &nearly[..]] {
        for (a, b) in [(x, &other[..]), (&other[..], x)] {
            let (v, gx, gy) = ts_pair(OP_CORR, a, b);
            assert_eq!(v, 0.0);
            assert!(
                gx.iter().chain(&gy).all(|&g| g == 0.0),
                "corr gradient on a flat window"
            );
        }
        let (v, g) = ts_single(OP_ZSCORE, x);
        assert_eq!(v, 0.0);
        assert!(g.iter().all(|&g| g == 0.0));
    }
    // A constant window has σ = 0: stddev 0 and, having no derivative there, gradient 0.
    let (v, g) = ts_single(OP_STDDEV, &constant);
    assert_eq!(v, 0.0);
    assert!(g.iter().all(|&g| g == 0.0));
    // x_1 = 0: return is 0 with no gradient.
    let mut x = other.clone();
    x[0] = 0.0;
    let (v, g) = ts_single(OP_RETURN, &x);
    assert_eq!(v, 0.0);
    assert!(g.iter().all(|&g| g == 0.0));
    // cov has no degenerate case: on a constant window it is 0 with the ordinary gradient.
    let (v, gx, _) = ts_pair(OP_COV, &constant, &other);
    assert_eq!(v, 0.0);
    close(
        "cov d/dx0",
        gx[0],
        (other[0] as f64 - mean(&to64(&other))) / 9.0,
        1e-6,
        1e-5,
    );
}

#[test]
fn channel_count_matches_spec() {
    assert_eq!(ts_channels(127, 15, 105), 285);
    assert_eq!(ts_channels(127 & !OP_MEAN, 15, 105), 270);
    assert_eq!(ts_channels(127, 15, 28), 2 * 28 + 5 * 15);
    assert_eq!(ts_channels(OP_STDDEV | OP_MEAN, 15, 105), 30);
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Keras LSTM cell in f64: (c_t, h_t).
fn lstm_ref(z: &[f64], c_prev: f64) -> (f64, f64) {
    let c = sig(z[1]) * c_prev + sig(z[0]) * z[2].tanh();
    (c, sig(z[3]) * c.tanh())
}

#[test]
fn lstm_cell_matches_f64() {
    let mut r = rng(2);
    for _ in 0..100 {
        let z: [f32; 4] = std::array::from_fn(|_| r.gen_range(-2.0..2.0));
        let c_prev: f32 = r.gen_range(-1.5..1.5);
        let (dh, dc): (f32, f32) = (r.gen_range(-1.0..1.0), r.gen_range(-1.0..1.0));
        let out = lstm_cell_forward(z, c_prev);
        let z64 = to64(&z);
        let (c, h) = lstm_ref(&z64, c_prev as f64);
        for (k, f) in [sig(z64[0]), sig(z64[1]), z64[2].tanh(), sig(z64[3]), c, h]
            .into_iter()
            .enumerate()
        {
            close(&format!("lstm out {k}"), out[k], f, 1e-6, 1e-5);
        }
        let (dz, dc_prev) =
            lstm_cell_backward([out[0], out[1], out[2], out[3]], out[4], c_prev, dh, dc);
        // Loss = dh·h_t + dc·c_t, so its gradient in z and c_{t−1} is what the cell returns.
        let loss = |z: &[f64], cp: f64| {
            let (c, h) = lstm_ref(z, cp);
            dh as f64 * h + dc as f64 * c
        };
        let nz = numeric_grad(|p| loss(p, c_prev as f64), &z64);
        for k in 0..4 {
            close(&format!("lstm dz{k}"), dz[k], nz[k], 1e-5, 1e-3);
        }
        let nc = numeric_grad(|p| loss(&z64, p[0]), &[c_prev as f64]);
        close("lstm dc_prev", dc_prev, nc[0], 1e-5, 1e-3);
    }
}

/// Keras GRU (reset_after) cell in f64: h'.
fn gru_ref(xp: &[f64], rp: &[f64], h_prev: f64) -> f64 {
    let z = sig(xp[0] + rp[0]);
    let r = sig(xp[1] + rp[1]);
    let hh = (xp[2] + r * rp[2]).tanh();
    z * h_prev + (1.0 - z) * hh
}

#[test]
fn gru_cell_matches_f64() {
    let mut r = rng(3);
    for _ in 0..100 {
        let xp: [f32; 3] = std::array::from_fn(|_| r.gen_range(-2.0..2.0));
        let rp: [f32; 3] = std::array::from_fn(|_| r.gen_range(-2.0..2.0));
        let (h_prev, dh): (f32, f32) = (r.gen_range(-1.0..1.0), r.gen_range(-1.0..1.0));
        let out = gru_cell_forward(xp, rp, h_prev);
        let (x64, r64) = (to64(&xp), to64(&rp));
        close(
            "gru h'",
            out[3],
            gru_ref(&x64, &r64, h_prev as f64),
            1e-6,
            1e-5,
        );
        close("gru z", out[0], sig(x64[0] + r64[0]), 1e-6, 1e-5);
        close("gru r", out[1], sig(x64[1] + r64[1]), 1e-6, 1e-5);
        let (d, dh_direct) = gru_cell_backward(out[0], out[1], out[2], rp[2], h_prev, dh);
        let loss = |xp: &[f64], rp: &[f64], hp: f64| dh as f64 * gru_ref(xp, rp, hp);
        let nx = numeric_grad(|p| loss(p, &r64, h_prev as f64), &x64);
        let nr = numeric_grad(|p| loss(&x64, p, h_prev as f64), &r64);
        let nh = numeric_grad(|p| loss(&x64, &r64, p[0]), &[h_prev as f64]);
        for k in 0..3 {
            close(&format!("gru dx{k}"), d[k], nx[k], 1e-5, 1e-3);
        }
        // Recurrent side: z and r gates share the input side's gradient; the candidate's is ·r.
        close("gru drz", d[0], nr[0], 1e-5, 1e-3);
        close("gru drr", d[1], nr[1], 1e-5, 1e-3);
        close("gru drh", d[3], nr[2], 1e-5, 1e-3);
        close("gru dh_prev (direct)", dh_direct, nh[0], 1e-5, 1e-3);
    }
}

#[test]
fn adam_element_matches_f64() {
    let mut r = rng(4);
    let (lr_t, b1, b2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-7f32);
    let (mut p, mut m, mut v) = (0.3f32, 0.0f32, 0.0f32);
    let (mut p64, mut m64, mut v64) = (0.3f64, 0.0f64, 0.0f64);
    for _ in 0..50 {
        let g: f32 = r.gen_range(-1.0..1.0);
        adam_element(&mut p, &mut m, &mut v, g, lr_t, b1, b2, eps);
        let g = g as f64;
        m64 = b1 as f64 * m64 + (1.0 - b1 as f64) * g;
        v64 = b2 as f64 * v64 + (1.0 - b2 as f64) * g * g;
        p64 -= lr_t as f64 * m64 / (v64.sqrt() + eps as f64);
        close("adam m", m, m64, 1e-6, 1e-4);
        close("adam v", v, v64, 1e-7, 1e-4);
        close("adam p", p, p64, 1e-6, 1e-5);
    }
}

fn splitmix64_ref(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn dropout_hash_matches_rust_splitmix64() {
    // The first output of the reference splitmix64 generator seeded with 0.
    assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    let mut r = rng(5);
    for _ in 0..1000 {
        let x: u64 = r.gen();
        assert_eq!(splitmix64(x), splitmix64_ref(x));
    }
    let (seed, p) = (42u64, 0.3f32);
    let mut kept = 0;
    for k in 0..100_000u64 {
        let u = (splitmix64_ref(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11) as f64
            / (1u64 << 53) as f64;
        let want = if u >= p as f64 { 1.0 / (1.0 - p) } else { 0.0 };
        let got = dropout_mask(seed, k, p);
        assert_eq!(got, want, "element {k}");
        kept += (got > 0.0) as usize;
    }
    assert!(
        (kept as f64 / 1e5 - 0.7).abs() < 0.01,
        "kept fraction {kept}"
    );
    assert!((0..1000).all(|k| dropout_mask(seed, k, 0.0) == 1.0));
}

/// Gaussian elimination with partial pivoting in f64.
fn solve_ref(a: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut m: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            a[i * n..(i + 1) * n]
                .iter()
                .copied()
                .chain([b[i]])
                .collect()
        })
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
            .unwrap();
        m.swap(c, p);
        let pivot = m[c].clone();
        for row in &mut m[c + 1..] {
            let f = row[c] / pivot[c];
            for (v, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                *v -= f * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (m[i][n] - (i + 1..n).map(|j| m[i][j] * x[j]).sum::<f64>()) / m[i][i];
    }
    x
}

#[test]
fn cholesky_solves_normal_equations() {
    let mut r = rng(6);
    for n in [1, 2, 5, 11, 16] {
        // A = SᵀS + λI for a random tall S, as in the neutralized loss.
        let rows = 3 * n;
        let s: Vec<f64> = (0..rows * n).map(|_| r.gen_range(-1.0..1.0)).collect();
        let mut a = vec![0.0; n * n];
        for p in 0..n {
            for q in 0..n {
                a[p * n + q] = (0..rows).map(|k| s[k * n + p] * s[k * n + q]).sum::<f64>()
                    + if p == q { 1e-3 } else { 0.0 };
            }
        }
        let b: Vec<f64> = (0..n).map(|_| r.gen_range(-1.0..1.0)).collect();
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let x = cholesky_solve(&a32, &b32).expect("SPD");
        let want = solve_ref(&to64(&a32), &to64(&b32));
        for k in 0..n {
            close(&format!("n = {n}, x{k}"), x[k], want[k], 1e-4, 1e-3);
        }
    }
    assert!(
        cholesky_solve(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0]).is_none(),
        "indefinite matrix accepted"
    );
}
