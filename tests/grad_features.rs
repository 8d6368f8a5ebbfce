//! Feature layer and pooling: gradient checks, forward values against hand computations,
//! channel layout, spec parsing and validation.

use alphanet::ops::pooling::{self, pool_backward, pool_forward};
use alphanet::ops::ts_features::{
    self, all_pairs, pairs_among, ts_features_backward, ts_features_forward, FeatureSpec, OpSet,
};
use alphanet::Error;

mod common;
use common::assert_all_pass;

#[test]
fn ts_features_gradient_checks_pass() {
    let results = ts_features::checks();
    assert_eq!(results.len(), 7 * 2 + 2 + 1);
    assert_all_pass(&results);
}

#[test]
fn pooling_gradient_checks_pass() {
    assert_all_pass(&pooling::checks());
}

fn spec(
    n_features: usize,
    days: usize,
    stride: usize,
    ops: OpSet,
    pairs: Vec<(u16, u16)>,
) -> FeatureSpec {
    FeatureSpec {
        n_features,
        days,
        window: 10,
        stride,
        ops,
        pairs,
    }
}

/// Runs the layer on one sample whose features are `series` and returns `name → value` of step 0.
fn one_window(series: &[[f64; 10]], ops: OpSet, pairs: Vec<(u16, u16)>) -> Vec<(String, f64)> {
    let spec = spec(series.len(), 10, 10, ops, pairs);
    spec.validate().unwrap();
    let inp: Vec<f64> = series.iter().flatten().copied().collect();
    let mut out = vec![f64::NAN; spec.channels()];
    ts_features_forward(&mut out, &inp, 1, &spec);
    spec.channel_names().into_iter().zip(out).collect()
}

fn value(values: &[(String, f64)], name: &str) -> f64 {
    values
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no channel {name}"))
        .1
}

#[test]
fn forward_values_match_hand_computation() {
    // x: Σx = 38, x̄ = 3.8, Σx² = 202, Sxx = 202 − 10·3.8² = 57.6, σ = sqrt(5.76) = 2.4,
    // Σ k·x_k = 236. y = 2x + 1, z = 10 − x, w constant.
    let x = [2.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0];
    let y = x.map(|v| 2.0 * v + 1.0);
    let z = x.map(|v| 10.0 - v);
    let w = [7.0; 10];
    let v = one_window(&[x, y, z, w], OpSet::ALL, all_pairs(4));
    let close = |name: &str, want: f64| {
        let got = value(&v, name);
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{name}: {got} vs {want}"
        );
    };
    close("corr(0,1)", 1.0);
    close("corr(0,2)", -1.0);
    close("cov(0,1)", 2.0 * 57.6 / 9.0);
    close("cov(0,2)", -57.6 / 9.0);
    close("cov(1,2)", -2.0 * 57.6 / 9.0);
    close("stddev(0)", 2.4);
    close("stddev(1)", 4.8);
    close("zscore(0)", 3.8 / 2.4);
    close("zscore(1)", 8.6 / 4.8);
    close("return(0)", 3.0 / 2.0 - 1.0);
    close("return(1)", 7.0 / 5.0 - 1.0);
    close("decaylinear(0)", 236.0 / 55.0);
    close("decaylinear(1)", (2.0 * 236.0 + 55.0) / 55.0);
    close("mean(0)", 3.8);
    close("mean(2)", 6.2);
    // The decay weights sum to 1, so a constant series is its own decaylinear; its degenerate
    // statistics are exactly 0.
    close("decaylinear(3)", 7.0);
    close("mean(3)", 7.0);
    for name in [
        "stddev(3)",
        "zscore(3)",
        "return(3)",
        "corr(0,3)",
        "corr(2,3)",
        "cov(1,3)",
    ] {
        assert_eq!(value(&v, name), 0.0, "{name}");
    }
}

#[test]
fn return_of_window_starting_at_zero_is_zero() {
    let mut x = [1.0; 10];
    x[0] = 0.0;
    let v = one_window(&[x], OpSet::parse("return").unwrap(), vec![]);
    assert_eq!(value(&v, "return(0)"), 0.0);
}

#[test]
fn stride_five_gives_five_overlapping_windows() {
    let spec = spec(1, 30, 5, OpSet::parse("mean").unwrap(), vec![]);
    assert_eq!(spec.steps(), 5);
    let inp: Vec<f64> = (0..30).map(f64::from).collect();
    let mut out = vec![0.0; 5];
    ts_features_forward(&mut out, &inp, 1, &spec);
    // Window j covers days 5j..5j+10, whose mean is 5j + 4.5.
    assert_eq!(out, [4.5, 9.5, 14.5, 19.5, 24.5]);
    assert_eq!(FeatureSpec { stride: 10, ..spec }.steps(), 3);
}

#[test]
fn batch_layout_is_feature_major_in_step_major_out() {
    // Two samples, two features; sample s feature f holds days 100s + 10f + 0..30.
    let spec = spec(2, 30, 10, OpSet::parse("mean,return").unwrap(), vec![]);
    let inp: Vec<f64> = (0..2)
        .flat_map(|s| {
            (0..2).flat_map(move |f| (0..30).map(move |t| (100 * s + 10 * f + t) as f64 + 1.0))
        })
        .collect();
    let mut out = vec![0.0; 2 * 3 * 4];
    ts_features_forward(&mut out, &inp, 2, &spec);
    for s in 0..2 {
        for step in 0..3 {
            for f in 0..2 {
                let first = (100 * s + 10 * f + 10 * step) as f64 + 1.0;
                let at = |ch: usize| out[(s * 3 + step) * 4 + ch];
                assert_eq!(
                    at(f),
                    (first + 9.0) / first - 1.0,
                    "return s{s} step{step} f{f}"
                );
                assert_eq!(at(2 + f), first + 4.5, "mean s{s} step{step} f{f}");
            }
        }
    }
}

#[test]
fn backward_accumulates() {
    let spec = spec(3, 30, 5, OpSet::ALL, all_pairs(3));
    let inp: Vec<f64> = (0..90)
        .map(|i| 1.0 + ((i * 37) % 11) as f64 / 7.0)
        .collect();
    let dout: Vec<f64> = (0..spec.steps() * spec.channels())
        .map(|i| ((i * 13) % 7) as f64 - 3.0)
        .collect();
    let mut once = vec![0.0; 90];
    ts_features_backward(&mut once, &dout, &inp, 1, &spec);
    let mut twice = vec![1.0; 90];
    ts_features_backward(&mut twice, &dout, &inp, 1, &spec);
    for (a, b) in once.iter().zip(&twice) {
        assert!((b - 1.0 - a).abs() < 1e-12);
    }
}

#[test]
fn f32_stays_finite_on_volume_scale_features() {
    // Volume-like series (~1e9): Sxx ~ 1e18, so Sxx·Syy would overflow f32; corr must not.
    let spec = spec(
        2,
        10,
        10,
        OpSet::parse("corr,stddev").unwrap(),
        vec![(0, 1)],
    );
    let inp64: Vec<f64> = (0..20)
        .map(|i| 1e9 * (1.0 + ((i * 7) % 10) as f64 / 3.0 + (i / 10) as f64))
        .collect();
    let inp32: Vec<f32> = inp64.iter().map(|&v| v as f32).collect();
    let (mut o64, mut o32) = (vec![0.0f64; 3], vec![0.0f32; 3]);
    ts_features_forward(&mut o64, &inp64, 1, &spec);
    ts_features_forward(&mut o32, &inp32, 1, &spec);
    for (a, b) in o32.iter().zip(&o64) {
        assert!(
            a.is_finite() && (*a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{a} vs {b}"
        );
    }
}

#[test]
fn channel_layout_with_fifteen_features() {
    let spec = spec(15, 30, 10, OpSet::ALL, all_pairs(15));
    spec.validate().unwrap();
    assert_eq!(spec.channels(), 285);
    assert_eq!(spec.steps(), 3);
    let mut want = Vec::new();
    for op in ["corr", "cov"] {
        for i in 0..15 {
            for j in i + 1..15 {
                want.push(format!("{op}({i},{j})"));
            }
        }
    }
    for op in ["stddev", "zscore", "return", "decaylinear", "mean"] {
        want.extend((0..15).map(|f| format!("{op}({f})")));
    }
    assert_eq!(spec.channel_names(), want);
    let peer = FeatureSpec {
        ops: OpSet::PEER6,
        ..spec.clone()
    };
    assert_eq!(peer.channels(), 270);
    let v21 = FeatureSpec {
        pairs: pairs_among(&[1, 3, 4, 6, 8, 10, 12, 14]),
        ..spec
    };
    assert_eq!(v21.channels(), 28 + 28 + 75);
}

#[test]
fn pair_lists() {
    assert_eq!(pairs_among(&[0, 3, 7]), vec![(0, 3), (0, 7), (3, 7)]);
    assert_eq!(pairs_among(&[7, 0, 3]), vec![(0, 3), (0, 7), (3, 7)]);
    assert_eq!(
        all_pairs(4),
        vec![(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    );
    assert_eq!(all_pairs(15).len(), 105);
}

#[test]
fn op_set_parse_display_serde() {
    let all = "corr,cov,stddev,zscore,return,decaylinear,mean";
    assert_eq!(OpSet::parse(all).unwrap(), OpSet::ALL);
    assert_eq!(OpSet::ALL.to_string(), all);
    assert_eq!(
        OpSet::PEER6.to_string(),
        "corr,cov,stddev,zscore,return,decaylinear"
    );
    assert_eq!(OpSet::parse("mean, corr").unwrap().to_string(), "corr,mean");
    assert_eq!(OpSet::parse("mean,corr").unwrap().len(), 2);
    for bad in ["", "corr,bogus", "corr,,cov"] {
        match OpSet::parse(bad) {
            Err(Error::Config(msg)) => assert!(
                msg.contains("--ops") && msg.contains("decaylinear"),
                "{msg}"
            ),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let json = serde_json::to_string(&OpSet::PEER6).unwrap();
    assert_eq!(
        json,
        r#"["corr","cov","stddev","zscore","return","decaylinear"]"#
    );
    assert_eq!(serde_json::from_str::<OpSet>(&json).unwrap(), OpSet::PEER6);
    assert!(serde_json::from_str::<OpSet>(r#"["median"]"#).is_err());
    assert!(serde_json::from_str::<OpSet>("[]").is_err());
    let s = spec(8, 30, 5, OpSet::ALL, pairs_among(&[0, 2, 5]));
    let back: FeatureSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn invalid_specs_are_config_errors() {
    let ok = spec(4, 30, 10, OpSet::ALL, all_pairs(4));
    ok.validate().unwrap();
    let bad = [
        FeatureSpec {
            window: 1,
            ..ok.clone()
        },
        FeatureSpec {
            window: 31,
            ..ok.clone()
        },
        FeatureSpec {
            stride: 0,
            ..ok.clone()
        },
        FeatureSpec {
            n_features: 0,
            pairs: vec![],
            ..ok.clone()
        },
        FeatureSpec {
            pairs: vec![(2, 1)],
            ..ok.clone()
        },
        FeatureSpec {
            pairs: vec![(1, 1)],
            ..ok.clone()
        },
        FeatureSpec {
            pairs: vec![(1, 4)],
            ..ok.clone()
        },
        FeatureSpec {
            pairs: vec![(0, 1), (0, 1)],
            ..ok.clone()
        },
        FeatureSpec {
            ops: OpSet::parse("corr,cov").unwrap(),
            pairs: vec![],
            ..ok.clone()
        },
    ];
    for s in bad {
        assert!(
            matches!(s.validate(), Err(Error::Config(_))),
            "{s:?} accepted"
        );
    }
}

#[test]
fn pooling_forward_values_and_first_extreme() {
    // One sample, 3 steps × 2 channels, one window of 3.
    let inp = [1.0, 2.0, 3.0, 2.0, 2.0, 1.0];
    let mut out = [0.0; 6];
    pool_forward(&mut out, &inp, 1, 3, 2, 3, 3);
    assert_eq!(out, [2.0, 5.0 / 3.0, 3.0, 2.0, 1.0, 1.0]);
    // Channel 1 ties for max at steps 0 and 1: the first gets the gradient.
    let mut dinp = [0.0; 6];
    pool_backward(
        &mut dinp,
        &[3.0, 3.0, 10.0, 20.0, 100.0, 200.0],
        &inp,
        1,
        3,
        2,
        3,
        3,
    );
    assert_eq!(dinp, [101.0, 21.0, 11.0, 1.0, 1.0, 201.0]);
    assert_eq!(pooling::pooled_steps(7, 3, 2), 3);
}
