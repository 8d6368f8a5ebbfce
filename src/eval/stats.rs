//! Performance statistics of daily return series, as the report computes them: 242 trading
//! days a year, no risk-free rate, drawdowns on compounded NAV.
//!
//! A series is a slice of simple daily returns `r_d`; its NAV is `Π (1 + r_d)` starting at 1.
//! Excess series are the day-by-day differences `r_d − b_d` (the report's convention), so an
//! excess NAV is `Π (1 + r_d − b_d)`.

use serde::Serialize;

/// Trading days per year (A-shares).
pub const DAYS_PER_YEAR: f64 = 242.0;

/// `Π (1 + r_d)` after each day, starting from 1 before the first.
pub fn nav(returns: &[f64]) -> Vec<f64> {
    returns
        .iter()
        .scan(1.0, |v, r| {
            *v *= 1.0 + r;
            Some(*v)
        })
        .collect()
}

/// Annualized compounded return: `NAV_end^(242 / days) − 1` (0 for an empty series).
pub fn annualized_return(returns: &[f64]) -> f64 {
    if returns.is_empty() {
        return 0.0;
    }
    let total: f64 = returns.iter().map(|r| 1.0 + r).product();
    total.powf(DAYS_PER_YEAR / returns.len() as f64) - 1.0
}

/// Sample mean and sample standard deviation (n − 1); std is NaN below two values.
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n.max(1.0);
    if x.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = x.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Annualized volatility `std · √242`.
pub fn volatility(returns: &[f64]) -> f64 {
    mean_std(returns).1 * DAYS_PER_YEAR.sqrt()
}

/// `mean / std · √242` of daily returns: the Sharpe ratio of a return series (risk-free 0) and
/// the information ratio of an excess series. NaN when the std is 0 or undefined.
pub fn sharpe(returns: &[f64]) -> f64 {
    let (m, s) = mean_std(returns);
    if s > 0.0 {
        m / s * DAYS_PER_YEAR.sqrt()
    } else {
        f64::NAN
    }
}

/// Largest peak-to-trough fall of the NAV of `returns`, as a positive fraction; the starting
/// value 1 counts as a peak.
pub fn max_drawdown(returns: &[f64]) -> f64 {
    let mut peak = 1.0f64;
    let mut worst = 0.0f64;
    for v in nav(returns) {
        peak = peak.max(v);
        worst = worst.max(1.0 - v / peak);
    }
    worst
}

/// `r_d − b_d` day by day.
pub fn excess(returns: &[f64], bench: &[f64]) -> Vec<f64> {
    assert_eq!(returns.len(), bench.len(), "excess: length mismatch");
    returns.iter().zip(bench).map(|(r, b)| r - b).collect()
}

/// Compounded return per calendar period: consecutive days whose `key` (e.g. `YYYY-MM` or
/// `YYYY` of the date) agree are one period. `dates[d]` is the date of `returns[d]`.
pub fn period_returns(dates: &[String], returns: &[f64], key_len: usize) -> Vec<(String, f64)> {
    assert_eq!(
        dates.len(),
        returns.len(),
        "period_returns: length mismatch"
    );
    let mut out: Vec<(String, f64)> = Vec::new();
    for (d, r) in dates.iter().zip(returns) {
        let key = &d[..key_len.min(d.len())];
        match out.last_mut() {
            Some((k, g)) if k == key => *g = (1.0 + *g) * (1.0 + r) - 1.0,
            _ => out.push((key.to_string(), *r)),
        }
    }
    out
}

/// Share of calendar months in which the compounded return of `returns` beats that of `bench`
/// (strictly). NaN for an empty series.
pub fn monthly_win_rate(dates: &[String], returns: &[f64], bench: &[f64]) -> f64 {
    let mine = period_returns(dates, returns, 7);
    let theirs = period_returns(dates, bench, 7);
    let wins = mine
        .iter()
        .zip(&theirs)
        .filter(|((_, a), (_, b))| a > b)
        .count();
    if mine.is_empty() {
        f64::NAN
    } else {
        wins as f64 / mine.len() as f64
    }
}

/// The index-enhancement performance table of the report, for a portfolio against its
/// benchmark over the same days.
#[derive(Debug, Clone, Serialize)]
pub struct Performance {
    pub annual_return: f64,
    pub volatility: f64,
    pub sharpe: f64,
    pub max_drawdown: f64,
    /// Annualized return of the excess NAV `Π (1 + r − b)`.
    pub excess_return: f64,
    /// Annualized std of daily excess returns.
    pub tracking_error: f64,
    pub excess_max_drawdown: f64,
    /// `mean / std · √242` of daily excess returns.
    pub information_ratio: f64,
    /// Annualized excess return / excess max drawdown.
    pub calmar: f64,
    pub monthly_win_rate: f64,
    pub benchmark_annual_return: f64,
    /// Calendar year, portfolio, benchmark and excess (`Π (1 + r − b) − 1`) returns.
    pub per_year: Vec<YearReturn>,
}

#[derive(Debug, Clone, Serialize)]
pub struct YearReturn {
    pub year: String,
    pub portfolio: f64,
    pub benchmark: f64,
    pub excess: f64,
}

impl Performance {
    pub fn of(dates: &[String], returns: &[f64], bench: &[f64]) -> Performance {
        let ex = excess(returns, bench);
        let excess_return = annualized_return(&ex);
        let excess_max_drawdown = max_drawdown(&ex);
        let by_year = |x: &[f64]| period_returns(dates, x, 4);
        let per_year = by_year(returns)
            .into_iter()
            .zip(by_year(bench))
            .zip(by_year(&ex))
            .map(|(((year, p), (_, b)), (_, e))| YearReturn {
                year,
                portfolio: p,
                benchmark: b,
                excess: e,
            })
            .collect();
        Performance {
            annual_return: annualized_return(returns),
            volatility: volatility(returns),
            sharpe: sharpe(returns),
            max_drawdown: max_drawdown(returns),
            excess_return,
            tracking_error: volatility(&ex),
            excess_max_drawdown,
            information_ratio: sharpe(&ex),
            calmar: if excess_max_drawdown > 0.0 {
                excess_return / excess_max_drawdown
            } else {
                f64::NAN
            },
            monthly_win_rate: monthly_win_rate(dates, returns, bench),
            benchmark_annual_return: annualized_return(bench),
            per_year,
        }
    }
}
