//! RankIC: per date, the Spearman correlation between a factor and the realised label return
//! over that date's universe; summarised as mean, std, IC_IR = mean/std (not annualised) and
//! the share of dates with IC > 0.

use crate::data::samples::{spearman, SampleIndex};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct IcSummary {
    pub mean: f64,
    pub std: f64,
    pub ir: f64,
    pub positive: f64,
    pub dates: usize,
}

impl IcSummary {
    pub fn of(ics: &[f64]) -> IcSummary {
        let n = ics.len();
        let mean = ics.iter().sum::<f64>() / n.max(1) as f64;
        let var = ics.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        let std = var.sqrt();
        IcSummary {
            mean,
            std,
            ir: if std > 0.0 { mean / std } else { f64::NAN },
            positive: ics.iter().filter(|&&x| x > 0.0).count() as f64 / n.max(1) as f64,
            dates: n,
        }
    }
}

/// RankIC of `factor` (`[T, N]` over the whole panel, NaN where absent) against `labels`
/// (`[T, N]`, raw or z-scored: Spearman does not care) on every `every`-th date of `index`.
/// Stocks without a finite factor value are left out of that date's correlation.
pub fn rank_ic_series(
    factor: &[f32],
    labels: &[f32],
    n_stocks: usize,
    index: &SampleIndex,
    every: usize,
) -> Vec<(usize, f64)> {
    let mut out = Vec::new();
    for (pos, (&t, stocks)) in index.dates.iter().zip(&index.per_date).enumerate() {
        if pos % every.max(1) != 0 {
            continue;
        }
        let row = t as usize * n_stocks;
        let (mut f, mut y) = (Vec::new(), Vec::new());
        for &i in stocks {
            let (fv, yv) = (factor[row + i as usize], labels[row + i as usize]);
            if fv.is_finite() && yv.is_finite() {
                f.push(fv);
                y.push(yv);
            }
        }
        if f.len() >= 3 {
            out.push((t as usize, spearman(&f, &y)));
        }
    }
    out
}
