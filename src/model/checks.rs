//! Whole-model gradient checks in f64: every architecture × every loss, every parameter.

use super::{Arch, LossConfig, Model, ModelConfig};
use crate::ops::elementwise::Activation;
use crate::ops::gradcheck::{check, CheckResult};
use crate::ops::ts_features::OpSet;
use crate::train::step::{loss_and_grad, Batch};
use rand::Rng;

/// A small model of each architecture (6 features, 4 hidden units) on a batch of two dates of 10
/// samples with one style, checked under MSE, weighted MSE, neutralized MSE and both.
pub fn checks() -> Vec<CheckResult> {
    let mut out = Vec::new();
    for arch in [Arch::V1, Arch::V2, Arch::V3] {
        for (tag, loss) in [
            ("mse", LossConfig::default()),
            (
                "weighted",
                LossConfig {
                    neutralize: false,
                    long_weight: Some(2.0),
                },
            ),
            (
                "neutralized",
                LossConfig {
                    neutralize: true,
                    long_weight: None,
                },
            ),
            (
                "neutralized+weighted",
                LossConfig {
                    neutralize: true,
                    long_weight: Some(2.0),
                },
            ),
        ] {
            out.push(model_check(arch, Activation::Relu, tag, loss));
        }
    }
    // v1's hidden activation, the other choice (ReLU above).
    for act in Activation::ALL
        .into_iter()
        .filter(|&a| a != Activation::Relu)
    {
        out.push(model_check(Arch::V1, act, "mse", LossConfig::default()));
    }
    out
}

fn model_check(arch: Arch, activation: Activation, tag: &str, loss: LossConfig) -> CheckResult {
    let cfg = ModelConfig {
        arch,
        activation,
        n_features: 6,
        hidden: 4,
        dense_hidden: 5,
        ops: OpSet::ALL,
        pair_sample: Some(4),
        dropout: 0.2,
        seed: 3,
        ..ModelConfig::default()
    };
    let mut model: Model<f64> = Model::new(&cfg).expect("valid check config");
    let mut rng = crate::util::rng::stream(5, "model-check");
    // Random non-zero-centred weights and biases move BN and the gates off their symmetric point.
    for v in model.store.data.iter_mut() {
        *v += rng.gen_range(-0.1..0.1);
    }
    let b = 20;
    let batch = Batch {
        x: (0..b * cfg.n_features * cfg.days)
            .map(|_| rng.gen_range(1.0..2.0))
            .collect(),
        y: (0..b).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        w: (0..b).map(|i| if i % 2 == 0 { 2.0 } else { 1.0 }).collect(),
        styles: (0..b).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        k: 1,
        offsets: vec![0, 10, 20],
    };
    let seed = 9;
    loss_and_grad(&mut model, &batch, &loss, seed);
    let analytic = model.store.grad.clone();
    let theta = model.store.data.clone();
    let mut probe = model.clone();
    let name = match activation {
        Activation::Relu => format!("model {arch:?} + {tag}"),
        act => format!("model {arch:?}({}) + {tag}", act.name()),
    };
    let shape = format!("{} params, batch {b}", theta.len());
    check(&name, &shape, &theta, &analytic, |p| {
        probe.store.data.copy_from_slice(p);
        loss_and_grad(&mut probe, &batch, &loss, seed).0
    })
}
