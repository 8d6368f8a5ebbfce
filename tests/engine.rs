//! Engine checks that need no data: losses, whole models, Adam, coverage.

use alphanet::autograd::adam::{adam_step, AdamConfig};
use alphanet::autograd::params::ParamStore;
use alphanet::ops::loss::long_side_weights;

mod common;
use common::assert_all_pass;

#[test]
fn loss_gradients_match_finite_differences() {
    assert_all_pass(&alphanet::ops::loss::checks());
}

#[test]
fn whole_model_gradients_match_finite_differences() {
    let rows = alphanet::model::checks::checks();
    assert_eq!(
        rows.len(),
        13,
        "3 architectures × 4 losses, and v1 with tanh"
    );
    assert!(rows.iter().any(|r| r.name.contains("V1(tanh)")), "{rows:?}");
    assert_all_pass(&rows);
}

#[test]
fn long_side_weights_rank_within_the_date_with_stable_ties() {
    let y = [0.5, -1.0, 2.0, 0.5, 0.1];
    // descending: 2.0(2), 0.5(0), 0.5(3), 0.1(4), -1.0(1); top half = ranks 0,1,2 (r < 2.5)
    assert_eq!(long_side_weights(&y, 2.0), vec![2.0, 1.0, 2.0, 2.0, 1.0]);
    let y = [1.0, 1.0, 1.0, 1.0];
    assert_eq!(long_side_weights(&y, 3.0), vec![3.0, 3.0, 1.0, 1.0]);
}

#[test]
fn neutralized_loss_removes_style_exposure_of_predictions() {
    use alphanet::ops::loss::neutralized_mse_loss;
    // ŷ = 1 + 2·style exactly: its residual on [1, style] is zero up to the ridge shrinkage
    // (λ = 1e-6·tr/(K+1) leaves O(1e-6) of the fit), so L = mean(y²) to ~1e-6 relative.
    let n = 12;
    let styles: Vec<f64> = (0..n).map(|i| i as f64 / 3.0 - 2.0).collect();
    let pred: Vec<f64> = styles.iter().map(|s| 1.0 + 2.0 * s).collect();
    let y: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
    let mut d = vec![0.0; n];
    let r = neutralized_mse_loss(&mut d, &pred, &y, None, &styles, &[0, n], n, 1);
    let expected = y.iter().map(|v| v * v).sum::<f64>() / n as f64;
    assert!(
        (r.loss - expected).abs() < 1e-5 * expected,
        "{} vs {expected}",
        r.loss
    );
    assert_eq!(r.fallback_groups, 0);
    // A group below 2(K+1) rows is plain MSE.
    let r = neutralized_mse_loss(
        &mut d,
        &pred[..3],
        &y[..3],
        None,
        &styles[..3],
        &[0, 3],
        3,
        1,
    );
    assert_eq!(r.fallback_groups, 1);
}

#[derive(serde::Deserialize)]
struct AdamGolden {
    learning_rate: f64,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    initial: Vec<f32>,
    grads: Vec<Vec<f32>>,
    trajectory: Vec<Vec<f32>>,
}

/// Our Adam against TensorFlow's own `tf.keras.optimizers.Adam` on the same gradients
/// (fixture made by scripts/make_fixtures.py).
#[test]
fn adam_follows_the_tensorflow_golden_trajectory() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tf_adam_golden.json"
    ))
    .expect("tests/fixtures/tf_adam_golden.json (run scripts/make_fixtures.py)");
    let g: AdamGolden = serde_json::from_str(&text).expect("golden json");
    let cfg = AdamConfig {
        lr: g.learning_rate,
        beta1: g.beta_1,
        beta2: g.beta_2,
        eps: g.epsilon,
    };
    let mut store = ParamStore::<f32>::new();
    store.add("theta", &[g.initial.len()], g.initial.clone(), 0.0);
    assert!(g.trajectory.len() >= 5);
    for (grad, expected) in g.grads.iter().zip(&g.trajectory) {
        store.grad.copy_from_slice(grad);
        adam_step(&mut store, &cfg);
        for (a, b) in store.data.iter().zip(expected) {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "step {}: {a} vs TF {b}",
                store.step
            );
        }
    }
}

#[test]
fn coverage_reproduces_the_report_table_5() {
    let report = [
        (6, 78.64),
        (7, 89.42),
        (8, 95.52),
        (9, 98.59),
        (10, 99.65),
        (11, 99.94),
    ];
    for (n, pct) in report {
        let c = alphanet::model::coverage::simulate(15, 10, n, 1000, 1);
        assert!(
            (100.0 * c.simulated - pct).abs() < 0.5,
            "n={n}: simulated {:.2}% vs report {pct}%",
            100.0 * c.simulated
        );
        assert!(
            (100.0 * c.analytic - pct).abs() < 0.5,
            "n={n}: analytic {:.2}% vs report {pct}%",
            100.0 * c.analytic
        );
    }
}

#[test]
fn pair_sample_draws_are_deterministic_and_distinct() {
    let a = alphanet::model::draw_features(15, 8, 42);
    assert_eq!(a, alphanet::model::draw_features(15, 8, 42));
    assert_eq!(a.len(), 8);
    assert!(a.windows(2).all(|w| w[0] < w[1]) && *a.last().unwrap() < 15);
    assert_ne!(a, alphanet::model::draw_features(15, 8, 43));
}

#[test]
fn v21_model_builds_only_pairs_among_its_draw() {
    use alphanet::model::{Model, ModelConfig};
    let cfg = ModelConfig {
        pair_sample: Some(8),
        seed: 5,
        ..ModelConfig::default()
    };
    let m = Model::<f32>::new(&cfg).unwrap();
    let drawn = m.drawn.clone().unwrap();
    assert_eq!(m.specs[0].pairs.len(), 28);
    assert!(m.specs[0]
        .pairs
        .iter()
        .all(|(i, j)| drawn.contains(i) && drawn.contains(j)));
    assert_eq!(m.specs[0].channels(), 28 + 28 + 5 * 15);
    let full = Model::<f32>::new(&ModelConfig::default()).unwrap();
    assert_eq!(full.specs[0].channels(), 285);
}

#[test]
fn keras_initialisation() {
    use alphanet::model::init::orthogonal;
    let mut rng = alphanet::util::rng::stream(1, "t");
    let (h, cols) = (30, 120);
    let w: Vec<f64> = orthogonal(&mut rng, h, cols);
    for a in 0..h {
        for b in 0..h {
            let dot: f64 = (0..cols).map(|c| w[a * cols + c] * w[b * cols + c]).sum();
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-9, "rows {a},{b}: {dot}");
        }
    }
    let m = alphanet::model::Model::<f32>::new(&alphanet::model::ModelConfig::default()).unwrap();
    let bias = m.store.get(m.store.find("lstm.bias").unwrap());
    assert!(
        bias[..30].iter().all(|&v| v == 0.0)
            && bias[30..60].iter().all(|&v| v == 1.0)
            && bias[60..].iter().all(|&v| v == 0.0)
    );
}
