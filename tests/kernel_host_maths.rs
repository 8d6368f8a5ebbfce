//! The kernels' per-thread maths (kernels/*.cuh, compiled for the host by build.rs) against the
//! crate's own CPU reference ops, so that a GPU-less machine still checks that the GPU computes
//! what the CPU computes: the feature layer assembled from the per-window functions against
//! `ts_features_forward`/`_backward`; the LSTM and GRU cells against `lstm_*`/`gru_*`; the
//! dropout hash against `dropout_uniform`/`dropout_forward`; the Adam element against
//! `adam_update`; the small Cholesky solve against `ops::loss::cholesky_solve`.

use alphanet::autograd::adam::adam_update;
use alphanet::cuda::host_maths::*;
use alphanet::ops::elementwise::{dropout_forward, dropout_uniform as cpu_dropout_uniform};
use alphanet::ops::gru::{gru_backward, gru_cache_len, gru_forward};
use alphanet::ops::loss::cholesky_solve as cpu_cholesky_solve;
use alphanet::ops::lstm::{lstm_backward, lstm_cache_len, lstm_forward};
use alphanet::ops::ts_features::{
    all_pairs, pairs_among, ts_features_backward, ts_features_forward, FeatureSpec, OpSet,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod common;
use common::uniform;

fn rng(purpose: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(0x6b65726e ^ purpose)
}

/// |a − r| ≤ atol + rtol·|r|.
fn close(what: &str, a: f32, r: f32, atol: f32, rtol: f32) {
    assert!(
        (a - r).abs() <= atol + rtol * r.abs(),
        "{what}: kernel maths {a} vs CPU reference {r}"
    );
}

/// The feature layer of one sample `x [F, D]` assembled from the per-window kernel functions:
/// (out [S, C], dx [F, D] for upstream `dout [S, C]`), channels in the spec's order.
fn features_from_windows(spec: &FeatureSpec, x: &[f32], dout: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (d, days) = (spec.window, spec.days);
    let mut out = Vec::with_capacity(dout.len());
    let mut dx = vec![0.0; x.len()];
    for (step, g) in dout.chunks_exact(spec.channels()).enumerate() {
        let at = |f: usize| f * days + step * spec.stride;
        let mut g = g.iter();
        for op in spec.ops.iter() {
            let bit = op.bit();
            if op.is_pair() {
                for &(i, j) in &spec.pairs {
                    let (i, j) = (at(i as usize), at(j as usize));
                    let (v, gx, gy) = ts_pair(bit, &x[i..i + d], &x[j..j + d]);
                    let gc = *g.next().unwrap();
                    out.push(v);
                    for k in 0..d {
                        dx[i + k] += gc * gx[k];
                        dx[j + k] += gc * gy[k];
                    }
                }
            } else {
                for f in 0..spec.n_features {
                    let (v, gx) = ts_single(bit, &x[at(f)..at(f) + d]);
                    let gc = *g.next().unwrap();
                    out.push(v);
                    for k in 0..d {
                        dx[at(f) + k] += gc * gx[k];
                    }
                }
            }
        }
    }
    (out, dx)
}

#[test]
fn feature_layer_from_window_maths_matches_cpu_op() {
    let spec = |n_features, window, stride, ops, pairs| FeatureSpec {
        n_features,
        days: 30,
        window,
        stride,
        ops,
        pairs,
    };
    let specs = [
        spec(15, 10, 10, OpSet::ALL, all_pairs(15)),
        spec(15, 10, 5, OpSet::ALL, all_pairs(15)),
        spec(
            15,
            10,
            10,
            OpSet::PEER6,
            pairs_among(&[0, 2, 3, 7, 8, 11, 12, 14]),
        ),
        spec(
            6,
            7,
            3,
            OpSet::parse("cov,zscore,return").unwrap(),
            all_pairs(6),
        ),
    ];
    let mut r = rng(1);
    let b = 3;
    for spec in &specs {
        let (f, days) = (spec.n_features, spec.days);
        let (s, c) = (spec.steps(), spec.channels());
        let mut x = uniform(&mut r, b * f * days, 0.5, 2.0);
        // Two volume-like features: Sxx·Syy of the pair (0, 1) overflows f32, √Sxx·√Syy does not.
        for sample in x.chunks_exact_mut(f * days) {
            sample[..2 * days].iter_mut().for_each(|v| *v *= 1e10);
        }
        let dout = uniform(&mut r, b * s * c, -1.0, 1.0);
        let mut out = vec![0.0; b * s * c];
        ts_features_forward(&mut out, &x, b, spec);
        let mut dx = vec![0.0; x.len()];
        ts_features_backward(&mut dx, &dout, &x, b, spec);
        for n in 0..b {
            let xs = &x[n * f * days..][..f * days];
            let (o, g) = features_from_windows(spec, xs, &dout[n * s * c..][..s * c]);
            let names = spec.channel_names();
            for (k, (&a, &want)) in o.iter().zip(&out[n * s * c..][..s * c]).enumerate() {
                let what = format!("{:?} sample {n} step {} {}", spec.ops, k / c, names[k % c]);
                close(&what, a, want, 1e-4, 1e-3);
            }
            for (k, (&a, &want)) in g.iter().zip(&dx[n * f * days..][..f * days]).enumerate() {
                let what = format!("{:?} sample {n} d/dx[{}][{}]", spec.ops, k / days, k % days);
                close(&what, a, want, 1e-4, 1e-3);
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
}

#[test]
fn channel_count_and_op_bits_match_feature_spec() {
    assert_eq!(OpSet::ALL.mask(), 127);
    assert_eq!(OpSet::PEER6.mask(), 127 & !OP_MEAN);
    assert_eq!(OpSet::parse("corr,cov").unwrap().mask(), OP_CORR | OP_COV);
    for (ops, n_features, pairs) in [
        (OpSet::ALL, 15, all_pairs(15)),
        (OpSet::PEER6, 15, all_pairs(15)),
        (OpSet::ALL, 15, pairs_among(&[1, 4, 5, 9, 10, 11, 12, 13])),
        (OpSet::parse("stddev,mean").unwrap(), 15, vec![]),
    ] {
        let spec = FeatureSpec {
            n_features,
            days: 30,
            window: 10,
            stride: 10,
            ops,
            pairs,
        };
        let want = spec.channels();
        assert_eq!(ts_channels(ops.mask(), n_features, spec.pairs.len()), want);
    }
}

/// B = 1, S = 2, I = 1 with x = 0 and W_hh = 0: every step's pre-activations are exactly the
/// bias and only the cell state links the steps, so the CPU cache holds the cell maths of each
/// step and the bias gradient is the sum of the two steps' pre-activation gradients.
const CELL_H: usize = 8;

#[test]
fn lstm_cell_maths_matches_cpu_layer() {
    let h = CELL_H;
    let (b, s, i, g) = (1, 2, 1, 4 * h);
    let mut r = rng(2);
    for _ in 0..20 {
        let bias = uniform(&mut r, g, -2.0, 2.0);
        let w_ih = uniform(&mut r, g, -1.0, 1.0);
        let (x, w_hh) = (vec![0.0; s], vec![0.0; h * g]);
        let dh_out = uniform(&mut r, h, -1.0, 1.0);
        let mut h_out = vec![0.0; h];
        let mut cache = vec![0.0; lstm_cache_len(b, s, h)];
        lstm_forward(&mut h_out, &mut cache, &x, &w_ih, &w_hh, &bias, b, s, i, h);
        let (mut dx, mut dw_ih, mut dw_hh, mut dbias) =
            (vec![0.0; s], vec![0.0; g], vec![0.0; h * g], vec![0.0; g]);
        lstm_backward(
            &mut dx, &mut dw_ih, &mut dw_hh, &mut dbias, &dh_out, &cache, &x, &w_ih, &w_hh, b, s,
            i, h,
        );
        for j in 0..h {
            let z = [bias[j], bias[h + j], bias[2 * h + j], bias[3 * h + j]];
            let step1 = lstm_cell_forward(z, 0.0);
            let step2 = lstm_cell_forward(z, step1[4]);
            for (t, cell) in [step1, step2].iter().enumerate() {
                for (q, &v) in cell.iter().enumerate() {
                    let want = cache[(t * 7 + q) * h + j];
                    close(
                        &format!("lstm cache t{t} slot {q} unit {j}"),
                        v,
                        want,
                        1e-6,
                        1e-6,
                    );
                }
            }
            close("lstm h_out", step2[6], h_out[j], 1e-6, 1e-6);
            let gates = |c: &[f32; 7]| [c[0], c[1], c[2], c[3]];
            let (dz2, dc1) = lstm_cell_backward(gates(&step2), step2[5], step1[4], dh_out[j], 0.0);
            let (dz1, _) = lstm_cell_backward(gates(&step1), step1[5], 0.0, 0.0, dc1);
            for q in 0..4 {
                let what = format!("lstm dbias gate {q} unit {j}");
                close(&what, dz1[q] + dz2[q], dbias[q * h + j], 1e-6, 1e-5);
            }
        }
    }
}

#[test]
fn gru_cell_maths_matches_cpu_layer() {
    let h = CELL_H;
    let (b, s, i, g) = (1, 2, 1, 3 * h);
    let mut r = rng(3);
    for _ in 0..20 {
        let bias = uniform(&mut r, 2 * g, -2.0, 2.0);
        let w_ih = uniform(&mut r, g, -1.0, 1.0);
        let (x, w_hh) = (vec![0.0; s], vec![0.0; h * g]);
        let dh_out = uniform(&mut r, h, -1.0, 1.0);
        let mut h_out = vec![0.0; h];
        let mut cache = vec![0.0; gru_cache_len(b, s, h)];
        gru_forward(&mut h_out, &mut cache, &x, &w_ih, &w_hh, &bias, b, s, i, h);
        let (mut dx, mut dw_ih, mut dw_hh, mut dbias) = (
            vec![0.0; s],
            vec![0.0; g],
            vec![0.0; h * g],
            vec![0.0; 2 * g],
        );
        gru_backward(
            &mut dx, &mut dw_ih, &mut dw_hh, &mut dbias, &dh_out, &cache, &x, &w_ih, &w_hh, b, s,
            i, h,
        );
        for j in 0..h {
            let xp = [bias[j], bias[h + j], bias[2 * h + j]];
            let rp = [bias[g + j], bias[g + h + j], bias[g + 2 * h + j]];
            let step1 = gru_cell_forward(xp, rp, 0.0);
            let step2 = gru_cell_forward(xp, rp, step1[3]);
            for (t, cell) in [step1, step2].iter().enumerate() {
                // CPU cache per unit: z, r, ĥ, the recurrent candidate term, h_t.
                let cached = [cell[0], cell[1], cell[2], rp[2], cell[3]];
                for (q, &v) in cached.iter().enumerate() {
                    let want = cache[(t * 5 + q) * h + j];
                    close(
                        &format!("gru cache t{t} slot {q} unit {j}"),
                        v,
                        want,
                        1e-6,
                        1e-6,
                    );
                }
            }
            close("gru h_out", step2[3], h_out[j], 1e-6, 1e-6);
            let (d2, direct) =
                gru_cell_backward(step2[0], step2[1], step2[2], rp[2], step1[3], dh_out[j]);
            let (d1, _) = gru_cell_backward(step1[0], step1[1], step1[2], rp[2], 0.0, direct);
            // Input bias row: dxz, dxr, dxh; recurrent row: dxz, dxr, drh.
            for (q, slot) in [(0, 0), (1, 1), (2, 2)] {
                let (sum, want) = (d1[slot] + d2[slot], dbias[q * h + j]);
                close(
                    &format!("gru input dbias {q} unit {j}"),
                    sum,
                    want,
                    1e-6,
                    1e-5,
                );
            }
            for (q, slot) in [(0, 0), (1, 1), (2, 3)] {
                let (sum, want) = (d1[slot] + d2[slot], dbias[g + q * h + j]);
                close(
                    &format!("gru recurrent dbias {q} unit {j}"),
                    sum,
                    want,
                    1e-6,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn adam_element_is_cpu_adam_update_bit_for_bit() {
    let n = 64;
    let mut r = rng(4);
    let (lr_t, b1, b2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-7f32);
    let mut cpu = [uniform(&mut r, n, -1.0, 1.0), vec![0.0; n], vec![0.0; n]];
    let mut kernel = cpu.clone();
    for _ in 0..50 {
        let grad = uniform(&mut r, n, -1.0, 1.0);
        let [p, m, v] = &mut cpu;
        adam_update(p, m, v, &grad, n, lr_t, b1, b2, eps);
        let [p, m, v] = &mut kernel;
        for k in 0..n {
            adam_element(&mut p[k], &mut m[k], &mut v[k], grad[k], lr_t, b1, b2, eps);
        }
        assert_eq!(kernel, cpu);
    }
}

#[test]
fn dropout_hash_is_cpu_dropout_bit_for_bit() {
    // The first output of the reference splitmix64 generator seeded with 0.
    assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    let n = 100_000;
    for seed in [0u64, 42, u64::MAX, 0x9E37_79B9_7F4A_7C15] {
        for k in (0..n as u64).chain([u64::MAX, 1 << 40]) {
            assert_eq!(
                dropout_uniform(seed, k).to_bits(),
                cpu_dropout_uniform(seed, k).to_bits(),
                "seed {seed} element {k}"
            );
        }
        for p in [0.0, 0.1, 0.3, 0.5] {
            let (mut out, mut mask) = (vec![0.0f32; n], vec![0.0f32; n]);
            dropout_forward(&mut out, &mut mask, &vec![1.0; n], n, p, seed);
            let kept = (0..n)
                .filter(|&k| {
                    let m = dropout_mask(seed, k as u64, p);
                    assert_eq!(
                        m.to_bits(),
                        mask[k].to_bits(),
                        "seed {seed} p {p} element {k}"
                    );
                    m > 0.0
                })
                .count();
            let want = 1.0 - p;
            assert!(
                (kept as f64 / n as f64 - want).abs() < 0.01,
                "kept {kept} at p {p}"
            );
        }
    }
}

#[test]
fn cholesky_is_cpu_cholesky_bit_for_bit() {
    let mut r = rng(6);
    for n in [1, 2, 5, 11, 16] {
        // A = SᵀS + λI for a random tall S, as in the neutralized loss.
        let rows = 3 * n;
        let s = uniform(&mut r, rows * n, -1.0, 1.0);
        let mut a = vec![0.0f32; n * n];
        for p in 0..n {
            for q in 0..n {
                a[p * n + q] = (0..rows).map(|k| s[k * n + p] * s[k * n + q]).sum::<f32>()
                    + if p == q { 1e-3 } else { 0.0 };
            }
        }
        let b = uniform(&mut r, n, -1.0, 1.0);
        let want = cpu_cholesky_solve(&mut a.clone(), &mut b.clone(), n);
        assert_eq!(cholesky_solve(&a, &b), want, "n = {n}");
    }
    // A singular A (two equal columns): both clamp the zero pivot the same way.
    let (a, b) = ([1.0f32, 1.0, 1.0, 1.0], [1.0f32, 2.0]);
    let want = cpu_cholesky_solve(&mut a.to_vec(), &mut b.to_vec(), 2);
    assert_eq!(cholesky_solve(&a, &b), want);
}
