//! A benchmark the source has no membership file for, rebuilt from the panel by the index's own
//! rule on the panel's size proxy (docs/evaluation.md#csi500-proxy).
//!
//! **CSI500 proxy.** On each review date (the first trading date of June and of December, as
//! the index reviews twice a year), the members are the [`CSI500_COUNT`] largest stocks by the
//! size proxy among those that are listed, not suspended, listed for at least
//! [`MIN_LISTED_DAYS`] trading dates and not CSI300 members that day (the real index excludes
//! the CSI300 and the 300 largest stocks; the two nearly coincide). They stay members until the
//! next review. On every date a member is weighted by exp(size), i.e. its trailing traded value
//! (the index weights free-float cap, which qlib does not have), renormalized per date. Before
//! the first review there is no benchmark.

use super::panel::flags;
use serde::Serialize;

/// Members of the CSI500.
pub const CSI500_COUNT: usize = 500;
/// The fewest trading dates a stock must have been listed to enter at a review.
pub const MIN_LISTED_DAYS: usize = 120;
/// The name `enhance --benchmark` knows the proxy by.
pub const CSI500_PROXY: &str = "csi500-proxy";
/// The index whose returns the proxy is checked against.
pub const CSI500_INDEX: &str = "SH000905";

pub const CSI500_WEIGHTING: &str = "proxy of CSI500: on the first trading date of each June and \
December, the 500 largest stocks by the size proxy among those listed for 120 trading dates, not \
suspended and not CSI300 members; weighted by exp(size) (trailing traded value), normalized per \
date; no membership before the first review";

/// Review dates: the first trading date of each June and December in `dates`.
pub fn review_dates(dates: &[String]) -> Vec<usize> {
    (0..dates.len())
        .filter(|&t| {
            let month = &dates[t][5..7];
            (month == "06" || month == "12") && (t == 0 || dates[t - 1][5..7] != *month)
        })
        .collect()
}

/// `[T, N]` weights of the CSI500 proxy. `excluded[t·N + i]` marks CSI300 members on date t;
/// `tradable` and `size` are the panel's `[T, N]` arrays.
pub fn csi500_weights(
    dates: &[String],
    tradable: &[u8],
    size: &[f32],
    excluded: &[bool],
    n: usize,
) -> Vec<f32> {
    let t_len = dates.len();
    let mut w = vec![0.0f32; t_len * n];
    let reviews = review_dates(dates);
    let listed = |t: usize, i: usize| tradable[t * n + i] & flags::LISTED != 0;
    // Dates each stock has been listed for, up to t.
    let mut age = vec![0usize; n];
    let mut members: Vec<usize> = Vec::new();
    let mut next_review = reviews.iter().peekable();
    for t in 0..t_len {
        for (i, a) in age.iter_mut().enumerate() {
            *a = if listed(t, i) { *a + 1 } else { 0 };
        }
        if next_review.next_if(|&&r| r == t).is_some() {
            let mut eligible: Vec<usize> = (0..n)
                .filter(|&i| {
                    let f = tradable[t * n + i];
                    f & flags::SUSPENDED == 0
                        && age[i] >= MIN_LISTED_DAYS
                        && !excluded[t * n + i]
                        && size[t * n + i].is_finite()
                })
                .collect();
            eligible.sort_by(|&a, &b| size[t * n + b].total_cmp(&size[t * n + a]));
            eligible.truncate(CSI500_COUNT);
            members = eligible;
        }
        let row = &mut w[t * n..(t + 1) * n];
        let mut total = 0.0f64;
        for &i in &members {
            let s = size[t * n + i];
            if listed(t, i) && s.is_finite() {
                row[i] = s.exp();
                total += f64::from(row[i]);
            }
        }
        if total > 0.0 {
            row.iter_mut()
                .for_each(|x| *x = (f64::from(*x) / total) as f32);
        }
    }
    w
}

/// How closely a benchmark's daily return (weights of the day before × the stocks' close-to-close
/// returns) follows the index it stands for.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyCheck {
    pub index: String,
    pub first_date: String,
    pub last_date: String,
    pub days: usize,
    /// Correlation of the daily returns.
    pub correlation: f64,
    /// Standard deviation of the daily return difference, × √252.
    pub tracking_error: f64,
    pub proxy_annual_return: f64,
    pub index_annual_return: f64,
    /// (year, proxy return, index return), compounded over the year's common days.
    pub per_year: Vec<(String, f64, f64)>,
}

/// Compares the proxy of weights `w` (`[T, N]`) with `index_returns` (one per date, NaN unknown).
/// `close` is `[T, N]` adjusted closes. `None` when they share fewer than 20 days.
pub fn check_against(
    dates: &[String],
    w: &[f32],
    close: &[f32],
    n: usize,
    index: &str,
    index_returns: &[f64],
) -> Option<ProxyCheck> {
    let mut days: Vec<(usize, f64, f64)> = Vec::new();
    for t in 1..dates.len() {
        let (mut sw, mut swr) = (0.0, 0.0);
        for i in 0..n {
            let wi = f64::from(w[(t - 1) * n + i]);
            let r = f64::from(close[t * n + i]) / f64::from(close[(t - 1) * n + i]) - 1.0;
            if wi > 0.0 && r.is_finite() {
                sw += wi;
                swr += wi * r;
            }
        }
        if sw > 0.0 && index_returns[t].is_finite() {
            days.push((t, swr / sw, index_returns[t]));
        }
    }
    if days.len() < 20 {
        return None;
    }
    let k = days.len() as f64;
    let mean = |f: &dyn Fn(&(usize, f64, f64)) -> f64| days.iter().map(f).sum::<f64>() / k;
    let (mp, mi) = (mean(&|d| d.1), mean(&|d| d.2));
    let cov = mean(&|d| (d.1 - mp) * (d.2 - mi));
    let (vp, vi) = (mean(&|d| (d.1 - mp).powi(2)), mean(&|d| (d.2 - mi).powi(2)));
    let md = mp - mi;
    let vd = mean(&|d| (d.1 - d.2 - md).powi(2));
    let annual = |f: &dyn Fn(&(usize, f64, f64)) -> f64| {
        days.iter().map(|d| (1.0 + f(d)).ln()).sum::<f64>() * 252.0 / k
    };
    let mut per_year: Vec<(String, f64, f64)> = Vec::new();
    for &(t, p, x) in &days {
        let year = &dates[t][..4];
        match per_year.last_mut() {
            Some((y, a, b)) if y == year => {
                *a = (1.0 + *a) * (1.0 + p) - 1.0;
                *b = (1.0 + *b) * (1.0 + x) - 1.0;
            }
            _ => per_year.push((year.to_string(), p, x)),
        }
    }
    Some(ProxyCheck {
        index: index.to_string(),
        first_date: dates[days[0].0].clone(),
        last_date: dates[days[days.len() - 1].0].clone(),
        days: days.len(),
        correlation: cov / (vp * vi).sqrt(),
        tracking_error: (vd * 252.0).sqrt(),
        proxy_annual_return: annual(&|d| d.1).exp() - 1.0,
        index_annual_return: annual(&|d| d.2).exp() - 1.0,
        per_year,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates() -> Vec<String> {
        // 28 dates per month, January .. December 2012.
        (1..=12)
            .flat_map(|m| (1..=28).map(move |d| format!("2012-{m:02}-{d:02}")))
            .collect()
    }

    #[test]
    fn reviews_are_the_first_dates_of_june_and_december() {
        let d = dates();
        let r: Vec<&str> = review_dates(&d).iter().map(|&t| d[t].as_str()).collect();
        assert_eq!(r, ["2012-06-01", "2012-12-01"]);
    }

    #[test]
    fn members_are_the_largest_eligible_and_weights_sum_to_one() {
        let d = dates();
        let (t_len, n) = (d.len(), 700);
        let mut tradable = vec![flags::LISTED; t_len * n];
        // Size falls with the index: stock 0 is the largest.
        let mut size: Vec<f32> = (0..t_len * n)
            .map(|k| 10.0 - (k % n) as f32 * 0.01)
            .collect();
        let mut excluded = vec![false; t_len * n];
        for t in 0..t_len {
            for i in 0..50 {
                excluded[t * n + i] = true; // CSI300 members: never in the proxy
            }
            tradable[t * n + 60] |= flags::SUSPENDED; // suspended on review: left out
        }
        // Listed only since May: too young at the June review, old enough in December.
        for t in 0..80 {
            tradable[t * n + 70] = 0;
            size[t * n + 70] = f32::NAN;
        }
        let w = csi500_weights(&d, &tradable, &size, &excluded, n);
        let june = review_dates(&d)[0];
        assert!(
            w[..june * n].iter().all(|&x| x == 0.0),
            "no benchmark before the first review"
        );
        let row = |t: usize| &w[t * n..(t + 1) * n];
        for t in [june, june + 5, t_len - 1] {
            let members: Vec<usize> = (0..n).filter(|&i| row(t)[i] > 0.0).collect();
            assert_eq!(members.len(), CSI500_COUNT);
            assert!((row(t).iter().map(|&x| f64::from(x)).sum::<f64>() - 1.0).abs() < 1e-4);
            assert!(members.iter().all(|&i| i >= 50 && i != 60));
            assert!(row(t)[51] > row(t)[52], "weights follow size");
        }
        assert_eq!(row(june)[70], 0.0);
        // In June: 50..=551 without 60 and 70; in December 70 is in and 551 drops out.
        assert!(row(june)[551] > 0.0);
        let december = review_dates(&d)[1];
        assert!(row(december)[70] > 0.0 && row(december)[551] == 0.0);
    }

    #[test]
    fn a_proxy_of_the_index_itself_tracks_it_exactly() {
        let d = dates();
        let (t_len, n) = (d.len(), 2);
        let w = vec![0.5f32; t_len * n];
        let close: Vec<f32> = (0..t_len * n)
            .map(|k| 10.0 * (1.0 + 0.001 * (k / n) as f32 * if k % n == 0 { 1.0 } else { 2.0 }))
            .collect();
        let index: Vec<f64> = (0..t_len)
            .map(|t| {
                if t == 0 {
                    f64::NAN
                } else {
                    (0..n)
                        .map(|i| {
                            f64::from(close[t * n + i]) / f64::from(close[(t - 1) * n + i]) - 1.0
                        })
                        .sum::<f64>()
                        / 2.0
                }
            })
            .collect();
        let c = check_against(&d, &w, &close, n, "X", &index).unwrap();
        assert_eq!(c.days, t_len - 1);
        assert!(
            c.tracking_error < 1e-9 && c.correlation > 0.999_999,
            "{c:?}"
        );
        let shifted: Vec<f64> = index.iter().map(|r| r + 0.001 * (r * 1e4).sin()).collect();
        let c = check_against(&d, &w, &close, n, "X", &shifted).unwrap();
        assert!(c.tracking_error > 1e-3, "{c:?}");
        assert_eq!(c.per_year.len(), 1);
    }
}
