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

/// The RankIC summary of each calendar year of `series` (`(date index, IC)` as from
/// [`rank_ic_series`]), by the `YYYY` of `dates`, in date order.
pub fn by_year(series: &[(usize, f64)], dates: &[String]) -> Vec<(String, IcSummary)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for &(t, ic) in series {
        let year = &dates[t][..4];
        match out.last_mut() {
            Some((y, ics)) if y == year => ics.push(ic),
            _ => out.push((year.to_string(), vec![ic])),
        }
    }
    out.into_iter()
        .map(|(y, ics)| (y, IcSummary::of(&ics)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_split_the_series_in_order() {
        let dates: Vec<String> = ["2011-12-30", "2012-01-04", "2012-06-01", "2013-01-04"]
            .map(String::from)
            .to_vec();
        let years = by_year(&[(0, 0.1), (1, 0.2), (2, 0.4), (3, -0.1)], &dates);
        let got: Vec<(&str, usize)> = years.iter().map(|(y, s)| (y.as_str(), s.dates)).collect();
        assert_eq!(got, [("2011", 1), ("2012", 2), ("2013", 1)]);
        assert!((years[1].1.mean - 0.3).abs() < 1e-12);
        assert!((years[2].1.mean + 0.1).abs() < 1e-12);
    }
}
