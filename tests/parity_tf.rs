//! Parity of the feature layer with the public Python `alphanet` package (TensorFlow), on the
//! fixture written by `scripts/make_fixtures.py` from the package's own `FeatureExpansion(stride=10)`.
//!
//! The package's maths equals docs/features.md on this input: population std (`tf.math.reduce_std`),
//! zscore = mean/std, linear decay weights `k/Σk`, return `x_d/x_1 − 1`, cov over `d − 1`, corr
//! as `(Sxy/d)/(σx·σy)`. It differs only on degenerate windows (it returns −1 for `x_1 = 0` and
//! divides by any nonzero std, however small), which the fixture's inputs, all in [0.5, 5.5],
//! never produce. Its channels are ordered std, zscore, decaylinear, return, cov, corr, and its
//! pairs are `(row, column)` of a strict lower triangle (row > column); ours are the reverse
//! group order with `(i, j)`, i < j. The map between the two is built from both name lists.

use alphanet::ops::ts_features::{all_pairs, ts_features_forward, FeatureSpec, OpSet};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Fixture {
    input_shape: [usize; 3],
    input: Vec<f32>,
    stride: usize,
    output_shape: [usize; 3],
    output: Vec<f32>,
    channels: Vec<String>,
}

fn load() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tf_feature_expansion.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Our name of the package's channel `op(a[,b])`: op renamed, pair arguments put in ascending order.
fn our_name(package: &str) -> String {
    let (op, args) = package
        .strip_suffix(')')
        .and_then(|s| s.split_once('('))
        .expect("channel name op(args)");
    let op = match op {
        "std" => "stddev",
        "zscore" | "decaylinear" | "return" | "cov" | "corr" => op,
        other => panic!("unknown package op {other}"),
    };
    let mut args: Vec<u16> = args
        .split(',')
        .map(|a| a.parse().expect("channel argument"))
        .collect();
    args.sort_unstable();
    let args: Vec<String> = args.iter().map(u16::to_string).collect();
    format!("{op}({})", args.join(","))
}

#[test]
fn feature_expansion_matches_tensorflow_alphanet() {
    let fx = load();
    let [b, days, features] = fx.input_shape;
    let spec = FeatureSpec {
        n_features: features,
        days,
        window: fx.stride,
        stride: fx.stride,
        ops: OpSet::PEER6,
        pairs: all_pairs(features),
    };
    spec.validate().unwrap();
    let (steps, channels) = (spec.steps(), spec.channels());
    assert_eq!(
        fx.output_shape,
        [b, steps, channels],
        "package output shape vs ours"
    );
    assert_eq!(fx.channels.len(), channels);

    // (batch, time, feature) → our [B, F, D].
    let mut inp = vec![0.0f32; b * features * days];
    for s in 0..b {
        for t in 0..days {
            for f in 0..features {
                inp[(s * features + f) * days + t] = fx.input[(s * days + t) * features + f];
            }
        }
    }
    let mut out = vec![0.0f32; b * steps * channels];
    ts_features_forward(&mut out, &inp, b, &spec);

    let ours: HashMap<String, usize> = spec
        .channel_names()
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    let map: Vec<usize> = fx.channels.iter().map(|p| ours[&our_name(p)]).collect();
    let mut covered = map.clone();
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(covered.len(), channels, "channel map is not one-to-one");

    // Both sides are f32 sums of 10 terms and a division or square root in different orders:
    // a few ulps (~1e-6 relative; the fixture agrees to 1e-6). 1e-5 relative to the value
    // (absolute below 1) leaves a 10x margin and is 10x stricter than the brief's 1e-4.
    let mut failures = Vec::new();
    for s in 0..b {
        for t in 0..steps {
            for (pc, &oc) in map.iter().enumerate() {
                let want = fx.output[(s * steps + t) * channels + pc];
                let got = out[(s * steps + t) * channels + oc];
                if (got - want).abs() > 1e-5 * want.abs().max(1.0) {
                    failures.push(format!(
                        "sample {s} step {t} {}: ours {got}, package {want}",
                        fx.channels[pc]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn package_names_map_to_ours() {
    assert_eq!(our_name("std(4)"), "stddev(4)");
    assert_eq!(our_name("corr(14,3)"), "corr(3,14)");
    assert_eq!(our_name("cov(1,0)"), "cov(0,1)");
}
