//! Central-difference gradient checking in f64, shared by the test suite and `alphanet gradcheck`.
//!
//! Every check uses the scalar loss `L = Σ w·y` with fixed random weights `w`, so the analytic
//! gradient of an op is its backward applied to `dy = w`, and the numeric one is
//! `(L(x + h·e_i) − L(x − h·e_i)) / 2h`. Pass: `|a − n| ≤ 1e-5 + 1e-3·|n|` for every coordinate.

/// Result of comparing one analytic gradient with its numeric estimate.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub shape: String,
    pub max_abs: f64,
    pub max_rel: f64,
    pub pass: bool,
}

pub const ATOL: f64 = 1e-5;
pub const RTOL: f64 = 1e-3;
pub const STEP: f64 = 1e-6;

/// `Σ w·y`.
pub fn weighted_sum(y: &[f64], w: &[f64]) -> f64 {
    assert_eq!(y.len(), w.len(), "weighted_sum: length mismatch");
    y.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// Numeric gradient of `loss` at `x` by central differences with step `STEP` (scaled by |x|).
pub fn numeric_grad(x: &[f64], mut loss: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let h = STEP * (1.0 + x[i].abs());
            xp[i] = x[i] + h;
            let lp = loss(&xp);
            xp[i] = x[i] - h;
            let lm = loss(&xp);
            xp[i] = x[i];
            (lp - lm) / (2.0 * h)
        })
        .collect()
}

/// Compares `analytic` with `numeric` coordinate by coordinate.
pub fn compare(name: &str, shape: &str, analytic: &[f64], numeric: &[f64]) -> CheckResult {
    assert_eq!(
        analytic.len(),
        numeric.len(),
        "{name}: gradient length mismatch"
    );
    let mut max_abs = 0.0f64;
    let mut max_rel = 0.0f64;
    let mut pass = true;
    for (&a, &n) in analytic.iter().zip(numeric) {
        let err = (a - n).abs();
        max_abs = max_abs.max(err);
        max_rel = max_rel.max(err / n.abs().max(1e-4));
        // NaN in either gradient fails too.
        if err.is_nan() || err > ATOL + RTOL * n.abs() {
            pass = false;
        }
    }
    CheckResult {
        name: name.to_string(),
        shape: shape.to_string(),
        max_abs,
        max_rel,
        pass,
    }
}

/// One-call check: numeric gradient of `loss` at `x` compared with `analytic`.
pub fn check(
    name: &str,
    shape: &str,
    x: &[f64],
    analytic: &[f64],
    loss: impl FnMut(&[f64]) -> f64,
) -> CheckResult {
    let numeric = numeric_grad(x, loss);
    compare(name, shape, analytic, &numeric)
}
