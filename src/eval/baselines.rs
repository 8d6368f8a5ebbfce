//! The classic one-line factors that `alphanet eval --baselines` puts beside a model's factor
//! (docs/evaluation.md#baselines), computed from the panel's raw features — the same adjusted
//! series the model's pictures hold — so that every evaluation shows what the network adds.
//!
//! With `c` = adjusted close (feature `close`), `v` = volume, `u` = turn (or the importer's
//! proxy), `r` = `return1`, every value at date t of stock i uses days up to t only:
//!
//! | name | value |
//! |---|---|
//! | `reversal5` | `−(c_t / c_{t−5} − 1)` |
//! | `reversal20` | `−(c_t / c_{t−20} − 1)` |
//! | `corr_cv10` | `−corr(c, v)` over `t−9..t` (Pearson; 0 when either series is flat, as the feature layer's `corr`) |
//! | `turnover20` | `−mean(u)` over `t−19..t` |
//! | `volatility20` | `−std(r)` over `t−19..t` (population std) |
//!
//! A value is NaN when any value it reads is not finite (a suspended day, a missing row): for
//! a reversal only the two closes (and the old one must be positive), for the others every day
//! of the window. Sums are taken in f64, results stored as
//! f32. Each baseline is then restricted ([`restrict`]) to the cells where the model's factor
//! has a value, so both are scored on the same dates and stocks.

use crate::data::panel::PanelView;
use crate::data::samples::N_FEATURES;
use crate::{Error, Result};

const RETURN1: usize = 0;
const CLOSE: usize = 2;
const VOLUME: usize = 5;
const TURN: usize = 7;

/// One classic factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    Reversal5,
    Reversal20,
    CorrCloseVolume10,
    Turnover20,
    Volatility20,
}

impl Baseline {
    /// Every baseline, in report order.
    pub const ALL: [Baseline; 5] = [
        Baseline::Reversal5,
        Baseline::Reversal20,
        Baseline::CorrCloseVolume10,
        Baseline::Turnover20,
        Baseline::Volatility20,
    ];

    /// The factor's name in reports and file names.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Reversal5 => "reversal5",
            Baseline::Reversal20 => "reversal20",
            Baseline::CorrCloseVolume10 => "corr_cv10",
            Baseline::Turnover20 => "turnover20",
            Baseline::Volatility20 => "volatility20",
        }
    }

    /// The formula, for report.md and metrics.json.
    pub fn formula(self) -> &'static str {
        match self {
            Baseline::Reversal5 => "−(close_t / close_{t−5} − 1)",
            Baseline::Reversal20 => "−(close_t / close_{t−20} − 1)",
            Baseline::CorrCloseVolume10 => "−corr(close, volume) over t−9..t",
            Baseline::Turnover20 => "−mean(turn) over t−19..t",
            Baseline::Volatility20 => "−std(return1) over t−19..t (population)",
        }
    }

    /// Trading days of history the value reads, t included.
    pub fn window(self) -> usize {
        match self {
            Baseline::Reversal5 => 6,
            Baseline::Reversal20 => 21,
            Baseline::CorrCloseVolume10 => 10,
            Baseline::Turnover20 | Baseline::Volatility20 => 20,
        }
    }

    pub fn parse(s: &str) -> Result<Baseline> {
        Baseline::ALL
            .into_iter()
            .find(|b| b.name() == s.trim())
            .ok_or_else(|| {
                Error::Config(format!(
                    "--baselines: unknown baseline {s:?}; choose from {} (comma-separated), or \
                     give --baselines alone for all of them",
                    Baseline::ALL.map(|b| b.name()).join(", ")
                ))
            })
    }

    /// A comma-separated list of names, or `all`; duplicates and empty lists are errors.
    pub fn parse_list(s: &str) -> Result<Vec<Baseline>> {
        let s = s.trim();
        if s == "all" {
            return Ok(Baseline::ALL.to_vec());
        }
        if s.is_empty() {
            return Err(Error::Config(format!(
                "--baselines: empty list; give --baselines alone (all), or some of {}",
                Baseline::ALL.map(|b| b.name()).join(", ")
            )));
        }
        let mut out = Vec::new();
        for part in s.split(',') {
            let b = Baseline::parse(part)?;
            if out.contains(&b) {
                return Err(Error::Config(format!(
                    "--baselines: {} is listed twice",
                    b.name()
                )));
            }
            out.push(b);
        }
        Ok(out)
    }

    /// The baseline over the whole panel, `[T, N]`, NaN where undefined.
    pub fn compute(self, p: PanelView) -> Vec<f32> {
        let (t_len, n) = (p.n_dates, p.n_stocks);
        let mut out = vec![f32::NAN; t_len * n];
        let w = self.window();
        let mut buf = vec![0.0f64; 2 * w];
        for t in w - 1..t_len {
            for i in 0..n {
                let feat = |u: usize, f: usize| p.features[(u * n + i) * N_FEATURES + f] as f64;
                let v = match self {
                    Baseline::Reversal5 | Baseline::Reversal20 => {
                        let (now, then) = (feat(t, CLOSE), feat(t + 1 - w, CLOSE));
                        if then > 0.0 {
                            -(now / then - 1.0)
                        } else {
                            f64::NAN
                        }
                    }
                    Baseline::CorrCloseVolume10 => {
                        let (x, y) = buf.split_at_mut(w);
                        for k in 0..w {
                            x[k] = feat(t + 1 - w + k, CLOSE);
                            y[k] = feat(t + 1 - w + k, VOLUME);
                        }
                        -corr(x, y)
                    }
                    Baseline::Turnover20 => {
                        -(0..w).map(|k| feat(t - k, TURN)).sum::<f64>() / w as f64
                    }
                    Baseline::Volatility20 => {
                        let x = &mut buf[..w];
                        for (k, xk) in x.iter_mut().enumerate() {
                            *xk = feat(t - k, RETURN1);
                        }
                        let m = x.iter().sum::<f64>() / w as f64;
                        -(x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / w as f64).sqrt()
                    }
                };
                if v.is_finite() {
                    out[t * n + i] = v as f32;
                }
            }
        }
        out
    }
}

/// Pearson correlation of two windows, NaN when any value is not finite, 0 when either series
/// is flat (`Sxx/d < 1e-12·(1 + x̄²)`, the feature layer's threshold, docs/features.md).
fn corr(x: &[f64], y: &[f64]) -> f64 {
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let d = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / d, y.iter().sum::<f64>() / d);
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (cx, cy) = (a - mx, b - my);
        sxx += cx * cx;
        syy += cy * cy;
        sxy += cx * cy;
    }
    let flat = |s: f64, m: f64| s / d < 1e-12 * (1.0 + m * m);
    if flat(sxx, mx) || flat(syy, my) {
        0.0
    } else {
        sxy / (sxx.sqrt() * syy.sqrt())
    }
}

/// `baseline` where `model` has a finite value, NaN elsewhere. Returns the restricted factor
/// and its coverage: the share of the model's finite cells where the baseline is finite too.
pub fn restrict(baseline: &[f32], model: &[f32]) -> (Vec<f32>, f64) {
    assert_eq!(baseline.len(), model.len(), "restrict: shapes");
    let mut have = 0usize;
    let mut both = 0usize;
    let out = baseline
        .iter()
        .zip(model)
        .map(|(&b, &m)| {
            if m.is_finite() {
                have += 1;
                if b.is_finite() {
                    both += 1;
                    return b;
                }
            }
            f32::NAN
        })
        .collect();
    let coverage = if have > 0 {
        both as f64 / have as f64
    } else {
        f64::NAN
    };
    (out, coverage)
}
