//! Criterion benches of every CPU op, forward and backward, in f32 at the shapes of a v2 / v1 /
//! v3 training step on a batch of 1000 pictures (15 features × 30 days, 3 steps, 270 or 285
//! channels, 30 hidden units). Run: `cargo bench --bench ops [-- FILTER]`.

use alphanet::autograd::adam::adam_update;
use alphanet::ops::elementwise::Activation;
use alphanet::ops::recurrent::Recurrent;
use alphanet::ops::ts_features::{all_pairs, ts_features_backward, ts_features_forward};
use alphanet::ops::ts_features::{FeatureSpec, OpSet};
use alphanet::ops::{batchnorm, dense, elementwise, loss, pooling};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::Rng;

const B: usize = 1000;
const F: usize = 15;
const DAYS: usize = 30;
const H: usize = 30;

fn draw(n: usize, lo: f32, hi: f32, seed: &str) -> Vec<f32> {
    let mut rng = alphanet::util::rng::stream(0, seed);
    (0..n).map(|_| rng.gen_range(lo..hi)).collect()
}

fn spec(ops: OpSet, stride: usize) -> FeatureSpec {
    FeatureSpec {
        n_features: F,
        days: DAYS,
        window: 10,
        stride,
        ops,
        pairs: all_pairs(F),
    }
}

fn features(c: &mut Criterion) {
    alphanet::util::system::keep_freed_memory();
    for (name, sp) in [
        ("peer6 s=10", spec(OpSet::PEER6, 10)),
        ("all s=10", spec(OpSet::ALL, 10)),
        ("all s=5", spec(OpSet::ALL, 5)),
    ] {
        let x = draw(B * F * DAYS, 1.0, 5.0, "x");
        let n_out = B * sp.steps() * sp.channels();
        let mut out = vec![0.0f32; n_out];
        c.bench_function(&format!("ts_features_forward {name}"), |bch| {
            bch.iter(|| ts_features_forward(&mut out, &x, B, &sp))
        });
        let dout = draw(n_out, -1.0, 1.0, "dout");
        let mut dx = vec![0.0f32; x.len()];
        c.bench_function(&format!("ts_features_backward {name}"), |bch| {
            bch.iter(|| ts_features_backward(&mut dx, &dout, &x, B, &sp))
        });
    }
}

fn norm_and_pool(c: &mut Criterion) {
    let (r, ch) = (B * 3, 270);
    let x = draw(r * ch, -2.0, 2.0, "bn-x");
    let dy = draw(r * ch, -1.0, 1.0, "bn-dy");
    let (gamma, beta) = (vec![1.0f32; ch], vec![0.0f32; ch]);
    let (mut out, mut mean, mut var) = (vec![0.0; r * ch], vec![0.0; ch], vec![0.0; ch]);
    c.bench_function("batchnorm_forward [3000,270]", |bch| {
        bch.iter(|| {
            batchnorm::batchnorm_forward(
                &mut out, &mut mean, &mut var, &x, &gamma, &beta, r, ch, 1e-3,
            )
        })
    });
    c.bench_function("batchnorm_inference [3000,270]", |bch| {
        bch.iter(|| {
            batchnorm::batchnorm_inference(&mut out, &x, &gamma, &beta, &mean, &var, r, ch, 1e-3)
        })
    });
    let (mut dx, mut dg, mut db) = (vec![0.0; r * ch], vec![0.0; ch], vec![0.0; ch]);
    c.bench_function("batchnorm_backward [3000,270]", |bch| {
        bch.iter(|| {
            batchnorm::batchnorm_backward(
                &mut dx, &mut dg, &mut db, &dy, &x, &mean, &var, &gamma, r, ch, 1e-3,
            )
        })
    });
    c.bench_function("batchnorm_backward no dinp [3000,270]", |bch| {
        bch.iter(|| {
            batchnorm::batchnorm_backward(
                &mut [],
                &mut dg,
                &mut db,
                &dy,
                &x,
                &mean,
                &var,
                &gamma,
                r,
                ch,
                1e-3,
            )
        })
    });
    // v1: pooling over the 3 steps of 285 channels.
    let (steps, pc) = (3, 285);
    let px = draw(B * steps * pc, -2.0, 2.0, "pool-x");
    let mut pout = vec![0.0f32; B * 3 * pc];
    c.bench_function("pool_forward [1000,3,285]", |bch| {
        bch.iter(|| pooling::pool_forward(&mut pout, &px, B, steps, pc, 3, 3))
    });
    let pdy = draw(pout.len(), -1.0, 1.0, "pool-dy");
    let mut pdx = vec![0.0f32; px.len()];
    c.bench_function("pool_backward [1000,3,285]", |bch| {
        bch.iter(|| pooling::pool_backward(&mut pdx, &pdy, &px, B, steps, pc, 3, 3))
    });
}

fn recurrent(c: &mut Criterion) {
    let (s, i) = (3, 270);
    let x = draw(B * s * i, -1.0, 1.0, "rnn-x");
    let dh = draw(B * H, -1.0, 1.0, "rnn-dh");
    for (name, kind, gates, bias_rows) in [
        ("lstm", Recurrent::Lstm, 4, 1),
        ("gru", Recurrent::Gru, 3, 2),
    ] {
        let g = gates * H;
        let w_ih = draw(i * g, -0.1, 0.1, "w_ih");
        let w_hh = draw(H * g, -0.3, 0.3, "w_hh");
        let bias = draw(bias_rows * g, -0.1, 0.1, "bias");
        let ops = alphanet::ops::recurrent_ops::<f32>(kind);
        let (fwd, bwd) = (ops.forward, ops.backward);
        let cache_len = (ops.cache_len)(B, s, H);
        let (mut h_out, mut cache) = (vec![0.0f32; B * H], vec![0.0f32; cache_len]);
        c.bench_function(&format!("{name}_forward [1000,3,270] H=30"), |bch| {
            bch.iter(|| fwd(&mut h_out, &mut cache, &x, &w_ih, &w_hh, &bias, B, s, i, H))
        });
        let mut dx = vec![0.0f32; x.len()];
        let (mut dwi, mut dwh, mut db) = (
            vec![0.0f32; w_ih.len()],
            vec![0.0f32; w_hh.len()],
            vec![0.0f32; bias.len()],
        );
        c.bench_function(&format!("{name}_backward [1000,3,270] H=30"), |bch| {
            bch.iter(|| {
                bwd(
                    &mut dx, &mut dwi, &mut dwh, &mut db, &dh, &cache, &x, &w_ih, &w_hh, B, s, i, H,
                )
            })
        });
        c.bench_function(&format!("{name}_backward no dx [1000,3,270] H=30"), |bch| {
            bch.iter(|| {
                bwd(
                    &mut [],
                    &mut dwi,
                    &mut dwh,
                    &mut db,
                    &dh,
                    &cache,
                    &x,
                    &w_ih,
                    &w_hh,
                    B,
                    s,
                    i,
                    H,
                )
            })
        });
    }
}

fn heads(c: &mut Criterion) {
    // v1's hidden layer: [1000, 3·285 + 3·855] → 30.
    let (i, o) = (3 * 285 + 3 * 855, 30);
    let x = draw(B * i, -1.0, 1.0, "dense-x");
    let w = draw(i * o, -0.05, 0.05, "dense-w");
    let bias = vec![0.0f32; o];
    let mut out = vec![0.0f32; B * o];
    c.bench_function("dense_forward [1000,3420]→30", |bch| {
        bch.iter(|| dense::dense_forward(&mut out, &x, &w, &bias, B, i, o))
    });
    let dy = draw(B * o, -1.0, 1.0, "dense-dy");
    let (mut dx, mut dw, mut db) = (vec![0.0f32; x.len()], vec![0.0f32; w.len()], vec![0.0; o]);
    c.bench_function("dense_backward [1000,3420]→30", |bch| {
        bch.iter(|| dense::dense_backward(&mut dx, &mut dw, &mut db, &dy, &x, &w, B, i, o))
    });
    let n = B * o;
    let mut y = vec![0.0f32; n];
    let mut dr = vec![0.0f32; n];
    for act in Activation::ALL {
        c.bench_function(&format!("{}_forward [30000]", act.name()), |bch| {
            bch.iter(|| elementwise::activation_forward(act, &mut y, &out, n))
        });
        c.bench_function(&format!("{}_backward [30000]", act.name()), |bch| {
            bch.iter(|| elementwise::activation_backward(act, &mut dr, &dy, &out, &y, n))
        });
    }
    let mut mask = vec![0.0f32; n];
    c.bench_function("dropout_forward [30000]", |bch| {
        bch.iter(|| elementwise::dropout_forward(&mut y, &mut mask, &out, n, 0.5, 7))
    });
    c.bench_function("dropout_backward [30000]", |bch| {
        bch.iter(|| elementwise::dropout_backward(&mut dr, &dy, &mask, n))
    });
}

fn losses_and_adam(c: &mut Criterion) {
    let pred = draw(B, -1.0, 1.0, "pred");
    let y = draw(B, -1.0, 1.0, "y");
    let w = loss::long_side_weights(&y, 2.0);
    let k = 3;
    let styles = draw(B * k, -1.0, 1.0, "styles");
    // Four dates of 250 stocks.
    let offsets: Vec<usize> = (0..=4).map(|d| d * B / 4).collect();
    let mut dpred = vec![0.0f32; B];
    c.bench_function("mse_loss (+grad) [1000]", |bch| {
        bch.iter(|| loss::mse_loss(&mut dpred, &pred, &y, None, B))
    });
    c.bench_function("weighted mse_loss (+grad) [1000]", |bch| {
        bch.iter(|| loss::mse_loss(&mut dpred, &pred, &y, Some(&w), B))
    });
    c.bench_function("neutralized_mse_loss (+grad) [1000] K=3, 4 dates", |bch| {
        bch.iter(|| {
            loss::neutralized_mse_loss(&mut dpred, &pred, &y, None, &styles, &offsets, B, k)
        })
    });
    // v2's parameter count with 270 channels.
    let n = 270 * 2 + 270 * 120 + 30 * 120 + 120 + 30 * 2 + 30 + 1;
    let grad = draw(n, -1.0, 1.0, "grad");
    let (mut p, mut m, mut v) = (vec![0.1f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    c.bench_function(&format!("adam_update [{n}]"), |bch| {
        bch.iter(|| adam_update(&mut p, &mut m, &mut v, &grad, n, 1e-4, 0.9, 0.999, 1e-7))
    });
}

criterion_group!(
    benches,
    features,
    norm_and_pool,
    recurrent,
    heads,
    losses_and_adam
);
criterion_main!(benches);
