//! The feature layer's f64 gradient checks (`alphanet gradcheck`, `tests/grad_features.rs`):
//! the analytic backward against central differences of the forward, per op and all together,
//! and exact zeros on degenerate windows.

use super::backward::ts_features_backward;
use super::forward::ts_features_forward;
use super::op::{Op, OpSet};
use super::spec::{all_pairs, FeatureSpec};
use crate::ops::gradcheck::{self, CheckResult};
use rand::Rng;

/// f64 gradient checks: each op alone (4 features, 3 pairs, D = 30, window 10, strides 10 and
/// 5), every op with every pair on 5 features, and exact zeros on degenerate windows.
pub fn checks() -> Vec<CheckResult> {
    let spec = |n_features, stride, ops, pairs| FeatureSpec {
        n_features,
        days: 30,
        window: 10,
        stride,
        ops,
        pairs,
    };
    let few = vec![(0, 1), (0, 3), (2, 3)];
    let mut results = Vec::new();
    for op in Op::ALL {
        for stride in [10, 5] {
            let name = format!("ts_features {} s={stride}", op.name());
            results.push(grad_check(&name, &spec(4, stride, op.into(), few.clone())));
        }
    }
    for stride in [10, 5] {
        let name = format!("ts_features all ops, all pairs s={stride}");
        results.push(grad_check(
            &name,
            &spec(5, stride, OpSet::ALL, all_pairs(5)),
        ));
    }
    results.push(degenerate_check());
    results
}

const CHECK_BATCH: usize = 2;

fn grad_check(name: &str, spec: &FeatureSpec) -> CheckResult {
    let mut rng = crate::util::rng::stream(7, name);
    let b = CHECK_BATCH;
    // Positive inputs away from zero keep return smooth; uniform draws keep every window non-degenerate.
    let x: Vec<f64> = (0..b * spec.n_features * spec.days)
        .map(|_| 1.0 + rng.gen::<f64>())
        .collect();
    let w: Vec<f64> = (0..b * spec.steps() * spec.channels())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let mut analytic = vec![0.0; x.len()];
    ts_features_backward(&mut analytic, &w, &x, b, spec);
    let shape = format!(
        "[{b},{},{}]->[{b},{},{}]",
        spec.n_features,
        spec.days,
        spec.steps(),
        spec.channels()
    );
    let mut y = vec![0.0; w.len()];
    gradcheck::check(name, &shape, &x, &analytic, |xp| {
        ts_features_forward(&mut y, xp, b, spec);
        gradcheck::weighted_sum(&y, &w)
    })
}

/// Feature 0 is constant (its stddev, zscore and every corr with it are degenerate) and feature 1
/// starts each window with 0 (its return is degenerate): those channels must be exactly 0 and
/// pass back exactly 0.
fn degenerate_check() -> CheckResult {
    let spec = FeatureSpec {
        n_features: 3,
        days: 30,
        window: 10,
        stride: 10,
        ops: OpSet::ALL,
        pairs: all_pairs(3),
    };
    let mut rng = crate::util::rng::stream(7, "ts_features degenerate");
    let mut x: Vec<f64> = (0..spec.n_features * spec.days)
        .map(|_| 1.0 + rng.gen::<f64>())
        .collect();
    x[..spec.days].fill(2.5);
    for step in 0..spec.steps() {
        x[spec.days + step * spec.stride] = 0.0;
    }
    let degenerate = [
        "corr(0,1)",
        "corr(0,2)",
        "stddev(0)",
        "zscore(0)",
        "return(1)",
    ];
    let names = spec.channel_names();
    let channels: Vec<Option<usize>> = degenerate
        .iter()
        .map(|d| names.iter().position(|n| n == d))
        .collect();
    let (s, c) = (spec.steps(), spec.channels());
    let mut y = vec![f64::NAN; s * c];
    ts_features_forward(&mut y, &x, 1, &spec);
    let mut dout = vec![0.0; s * c];
    let mut max_abs = 0.0f64;
    for &ch in channels.iter().flatten() {
        for step in 0..s {
            max_abs = max_abs.max(y[step * c + ch].abs());
            dout[step * c + ch] = rng.gen_range(0.5..1.5);
        }
    }
    let mut dx = vec![0.0; x.len()];
    ts_features_backward(&mut dx, &dout, &x, 1, &spec);
    max_abs = dx.iter().fold(max_abs, |m, v| m.max(v.abs()));
    CheckResult {
        name: "ts_features degenerate windows: value 0, grad 0".into(),
        shape: format!("[1,{},{}]->[1,{s},{c}]", spec.n_features, spec.days),
        max_abs,
        max_rel: max_abs,
        pass: max_abs == 0.0 && channels.iter().all(Option::is_some),
    }
}
