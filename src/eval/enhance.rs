//! Index enhancement (docs/evaluation.md): a weekly-rebalanced portfolio that maximizes the factor's
//! predicted alpha while matching the benchmark's industry and size exposures.
//!
//! **Schedule.** Signal dates are the last trading date of each calendar week (Monday-based)
//! within the factor's span; trades happen at the next trading date's VWAP ([`super::book`]).
//! The last portfolio is held to the following week's trade day (or the panel's end).
//!
//! **Per signal date t.** Benchmark weights b = `index.npy` at t, restricted to stocks with a
//! known industry and size and renormalized. A stock can trade at t+1 unless it is suspended
//! at t+1, its t+1 open sits at either price limit, or its VWAP at t+1 is unknown. The
//! optimizer's variables are the tradable stocks with a known industry and size that are
//! *eligible* (listed, not ST, not suspended at t) or currently held; a held, ineligible stock
//! may only be sold (upper bound = its weight, alpha = the date's lowest). Every other holding
//! is fixed (it cannot trade) and enters the exposures as a constant. Alpha = the factor
//! z-scored over the eligible stocks that have one, 0 (the mean) for those without: a stock
//! the factor does not cover is still held near its benchmark weight. Bounds: `max(0, b_i − δ) ≤ w_i ≤
//! b_i + δ`. Size is the panel's log market cap, centred at the benchmark's exposure.
//!
//! Building the first portfolio from cash has no turnover cap. When the capped problem is
//! infeasible (the drifted book is too far from the new exposures), that rebalance is solved
//! without the cap and listed in [`EnhanceResult::uncapped`]. A later rebalance infeasible even
//! then (e.g. a large benchmark member cannot trade, so no tradable mix matches the size
//! exposure within the deviation bound) keeps the drifted book and is listed in
//! [`EnhanceResult::skipped`]; an infeasible first build is an error naming the date.

use serde::Serialize;

use super::book::{run_book, Book};
use super::layered::factor_span;
use super::optimize::{Instance, SolveError};
use super::stats::Performance;
use crate::data::calendar::parse_date;
use crate::data::panel::{flags, PanelView};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct EnhanceConfig {
    /// Per-stock bound on `|w_i − b_i|`.
    pub max_deviation: f64,
    /// Cap on the two-way turnover `Σ |w − w_drifted|` of one rebalance.
    pub max_turnover: f64,
    /// Cost per side as a fraction of traded value.
    pub cost: f64,
}

impl Default for EnhanceConfig {
    fn default() -> Self {
        EnhanceConfig {
            max_deviation: 0.01,
            max_turnover: 0.30,
            cost: 0.002,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EnhanceResult {
    /// Panel date index of each daily return.
    pub days: Vec<usize>,
    /// Portfolio daily returns after costs.
    pub returns: Vec<f64>,
    /// Benchmark daily returns (held at VWAP like the portfolio, no costs).
    pub benchmark: Vec<f64>,
    pub signal_dates: Vec<usize>,
    /// Two-way turnover at each rebalance (the first is the build from cash).
    pub turnover: Vec<f64>,
    /// Signal dates whose rebalance had to drop the turnover cap.
    pub uncapped: Vec<usize>,
    /// Signal dates whose rebalance was infeasible even without the cap (book kept).
    pub skipped: Vec<usize>,
    /// Signal dates where untradable holdings over-weighted an industry, so the industry
    /// targets were reconciled (see `reconcile_group_targets`).
    pub forced: Vec<usize>,
    pub performance: Performance,
    /// Mean two-way turnover per rebalance after the first build.
    pub mean_turnover: f64,
    /// Sum of two-way turnover after the first build, per year (242 days).
    pub annual_turnover: f64,
}

/// Last trading date of each Monday-based calendar week that has a following trading date.
pub fn week_ends(dates: &[String]) -> Vec<usize> {
    let week = |t: usize| parse_date(&dates[t]).map(|d| (d + 3).div_euclid(7));
    (0..dates.len().saturating_sub(1))
        .filter(|&t| week(t) != week(t + 1))
        .collect()
}

/// Runs the enhancement of `factor` (`[T, N]`) against benchmark weights `bench` (`[T, N]`).
pub fn enhance(
    p: PanelView,
    factor: &[f32],
    bench: &[f32],
    cfg: &EnhanceConfig,
) -> Result<EnhanceResult> {
    let n = p.n_stocks;
    let (first, last) = factor_span(factor, n)
        .ok_or_else(|| Error::Data("the factor has no finite value".into()))?;
    let weeks = week_ends(p.dates);
    let signals: Vec<usize> = weeks
        .iter()
        .copied()
        .filter(|&t| (first..=last).contains(&t))
        .collect();
    if signals.len() < 2 {
        return Err(Error::Data(format!(
            "the factor covers {}..{}: fewer than two week-ends to rebalance on",
            p.dates[first], p.dates[last]
        )));
    }
    let last_signal = signals[signals.len() - 1];
    let end = weeks
        .iter()
        .find(|&&t| t > last_signal)
        .map_or(p.n_dates - 1, |&t| t + 1);
    let trade_days: Vec<usize> = signals.iter().map(|t| t + 1).collect();

    let bench_weights: Vec<Vec<f64>> = signals
        .iter()
        .map(|&t| benchmark_at(p, bench, t))
        .collect::<Result<_>>()?;
    let bench_run = run_book(
        p,
        &trade_days,
        end,
        0.0,
        |k, _| Ok(bench_weights[k].clone()),
    )?;
    let (mut uncapped, mut skipped, mut forced) = (Vec::new(), Vec::new(), Vec::new());
    let run = run_book(p, &trade_days, end, cfg.cost, |k, book| {
        match rebalance(p, factor, &bench_weights[k], signals[k], book, k > 0, cfg) {
            Ok(r) => {
                if !r.capped && k > 0 {
                    uncapped.push(signals[k]);
                }
                if r.forced {
                    forced.push(signals[k]);
                }
                Ok(r.weights)
            }
            Err(Error::Data(m)) if k > 0 => {
                eprintln!("warning: {m}; keeping the book");
                skipped.push(signals[k]);
                Ok(book.weights.clone())
            }
            Err(e) => Err(e),
        }
    })?;
    let days: Vec<usize> = (trade_days[0]..=end).collect();
    let day_dates: Vec<String> = days.iter().map(|&d| p.dates[d].clone()).collect();
    let performance = Performance::of(&day_dates, &run.returns, &bench_run.returns);
    let later = &run.turnover[1..];
    let later_sum: f64 = later.iter().sum();
    Ok(EnhanceResult {
        mean_turnover: later_sum / later.len().max(1) as f64,
        annual_turnover: later_sum * super::stats::DAYS_PER_YEAR / days.len() as f64,
        days,
        returns: run.returns,
        benchmark: bench_run.returns,
        signal_dates: signals,
        turnover: run.turnover,
        uncapped,
        skipped,
        forced,
        performance,
    })
}

fn known_style(p: PanelView, t: usize, i: usize) -> bool {
    p.industry[t * p.n_stocks + i] >= 0 && p.size[t * p.n_stocks + i].is_finite()
}

/// Benchmark weights of date t over stocks with a known industry and size, summing to 1.
fn benchmark_at(p: PanelView, bench: &[f32], t: usize) -> Result<Vec<f64>> {
    let n = p.n_stocks;
    let mut b: Vec<f64> = (0..n)
        .map(|i| {
            let x = bench[t * n + i] as f64;
            if x > 0.0 && known_style(p, t, i) {
                x
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = b.iter().sum();
    if total <= 0.0 {
        return Err(Error::Data(format!(
            "the benchmark has no member with a known industry and size on {}",
            p.dates[t]
        )));
    }
    b.iter_mut().for_each(|x| *x /= total);
    Ok(b)
}

/// Target weights for signal date t.
fn rebalance(
    p: PanelView,
    factor: &[f32],
    b: &[f64],
    t: usize,
    book: &Book,
    cap_turnover: bool,
    cfg: &EnhanceConfig,
) -> Result<Rebalanced> {
    let n = p.n_stocks;
    let w0 = &book.weights;
    let next = t + 1;
    let tradable = |i: usize| {
        let f = p.flags(next, i);
        let v = p.vwap(next, i);
        f & (flags::SUSPENDED | flags::LIMIT_UP_OPEN | flags::LIMIT_DOWN_OPEN) == 0
            && v.is_finite()
            && v > 0.0
    };
    let eligible =
        |i: usize| p.flags(t, i) & (flags::LISTED | flags::SUSPENDED | flags::ST) == flags::LISTED;
    let has_factor = |i: usize| factor[t * n + i].is_finite();
    let vars: Vec<usize> = (0..n)
        .filter(|&i| tradable(i) && known_style(p, t, i) && (eligible(i) || w0[i] > 0.0))
        .collect();
    let is_var = {
        let mut v = vec![false; n];
        vars.iter().for_each(|&i| v[i] = true);
        v
    };
    // Alpha: the factor z-scored over the eligible variables.
    let vals: Vec<f64> = vars
        .iter()
        .filter(|&&i| eligible(i) && has_factor(i))
        .map(|&i| factor[t * n + i] as f64)
        .collect();
    let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
    let sd = (vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / vals.len().max(1) as f64)
        .sqrt()
        .max(1e-12);
    let z = |i: usize| (factor[t * n + i] as f64 - mean) / sd;
    let lowest = vals.iter().map(|&x| (x - mean) / sd).fold(0.0, f64::min);

    let n_ind = p.industry[t * n..(t + 1) * n]
        .iter()
        .map(|&k| k.max(0) as usize + 1)
        .max()
        .unwrap_or(0);
    let size_c = |i: usize| p.size[t * n + i] as f64;
    let bench_size: f64 = (0..n)
        .map(|i| b[i] * if b[i] > 0.0 { size_c(i) } else { 0.0 })
        .sum();
    // Group targets: the benchmark's industry weights less what the fixed holdings already hold.
    let mut target = vec![0.0; n_ind];
    let mut size_target = 0.0;
    for i in 0..n {
        if b[i] > 0.0 {
            target[p.industry[t * n + i] as usize] += b[i];
        }
        if !is_var[i] && w0[i] > 0.0 {
            if !known_style(p, t, i) {
                return Err(Error::Data(format!(
                    "{}: holding {} cannot trade and has no known industry/size, so the exposures \
                     cannot be matched",
                    p.dates[t], i
                )));
            }
            target[p.industry[t * n + i] as usize] -= w0[i];
            size_target -= w0[i] * (size_c(i) - bench_size);
        }
    }
    let lower: Vec<f64> = vars
        .iter()
        .map(|&i| {
            if eligible(i) {
                (b[i] - cfg.max_deviation).max(0.0)
            } else {
                0.0
            }
        })
        .collect();
    let upper: Vec<f64> = vars
        .iter()
        .map(|&i| {
            if eligible(i) {
                b[i] + cfg.max_deviation
            } else {
                w0[i]
            }
        })
        .collect();
    let (mut lo, mut hi) = (vec![0.0; n_ind], vec![0.0; n_ind]);
    for (k, &i) in vars.iter().enumerate() {
        let g = p.industry[t * n + i] as usize;
        lo[g] += lower[k];
        hi[g] += upper[k];
    }
    let forced = reconcile_group_targets(&mut target, &lo, &hi);
    let inst = |with_cap: bool| Instance {
        alpha: vars
            .iter()
            .map(|&i| match (eligible(i), has_factor(i)) {
                (true, true) => z(i),
                (true, false) => 0.0,
                (false, _) => lowest,
            })
            .collect(),
        lower: lower.clone(),
        upper: upper.clone(),
        group: vars
            .iter()
            .map(|&i| p.industry[t * n + i] as usize)
            .collect(),
        group_target: target.clone(),
        size: vars.iter().map(|&i| size_c(i) - bench_size).collect(),
        size_target,
        turnover: with_cap.then(|| (vars.iter().map(|&i| w0[i]).collect(), cfg.max_turnover)),
    };
    let infeasible = |e: SolveError| {
        Error::Data(format!(
            "index enhancement on {} ({} tradable stocks): {e}",
            p.dates[t],
            vars.len()
        ))
    };
    let (x, capped) = match inst(cap_turnover).solve() {
        Ok(x) => (x, cap_turnover),
        Err(SolveError::Infeasible(_)) if cap_turnover => {
            (inst(false).solve().map_err(infeasible)?, false)
        }
        Err(e) => return Err(infeasible(e)),
    };
    let mut w: Vec<f64> = (0..n)
        .map(|i| if is_var[i] { 0.0 } else { w0[i] })
        .collect();
    for (&i, x) in vars.iter().zip(x) {
        w[i] = x;
    }
    Ok(Rebalanced {
        weights: w,
        capped,
        forced,
    })
}

/// Untradable holdings (suspended, limit-locked) can make an industry's exposure unreachable:
/// they may already hold more than the benchmark's weight of their industry, or the benchmark's
/// weight may sit in stocks nobody can trade. Each industry's target for the tradable stocks is
/// then clamped into what their bounds allow, `[Σ lower, Σ upper]`, and the difference is spread
/// over the unclamped industries with room left, in proportion to that room, so the book stays fully
/// invested. Returns whether any target changed (false, leaving the targets as they were, when
/// no spread can absorb the difference: the rebalance is then reported infeasible).
fn reconcile_group_targets(target: &mut [f64], lo: &[f64], hi: &[f64]) -> bool {
    const EPS: f64 = 1e-12;
    let clamped: Vec<f64> = target
        .iter()
        .zip(lo.iter().zip(hi))
        .map(|(&t, (&l, &h))| t.clamp(l, h.max(l)))
        .collect();
    let deficit: f64 = target.iter().sum::<f64>() - clamped.iter().sum::<f64>();
    if deficit.abs() <= EPS {
        return false;
    }
    // Only industries whose target was reachable take up the difference: a clamped industry is
    // already as close to the benchmark as its tradable stocks allow.
    let room: Vec<f64> = clamped
        .iter()
        .zip(target.iter())
        .zip(lo.iter().zip(hi))
        .map(|((&c, &t), (&l, &h))| match (c == t, deficit > 0.0) {
            (false, _) => 0.0,
            (true, true) => h - c,
            (true, false) => c - l,
        })
        .collect();
    let total_room: f64 = room.iter().sum();
    if total_room < deficit.abs() {
        return false;
    }
    for ((t, &c), &r) in target.iter_mut().zip(&clamped).zip(&room) {
        *t = c + deficit * r / total_room;
    }
    true
}

/// One rebalance's target weights, whether the turnover cap held, and whether the industry
/// targets had to be reconciled with untradable holdings.
struct Rebalanced {
    weights: Vec<f64>,
    capped: bool,
    forced: bool,
}

#[cfg(test)]
mod tests {
    use super::reconcile_group_targets;

    #[test]
    fn unreachable_industry_targets_are_clamped_and_the_rest_rescaled() {
        // Industry 0 is over-held by untradable stocks (target −0.1); industry 2's benchmark
        // weight sits in stocks nobody can trade (bounds 0..0).
        let mut t = vec![-0.1, 0.6, 0.3, 0.2];
        let (lo, hi) = (vec![0.0, 0.0, 0.0, 0.0], vec![0.5, 1.0, 0.0, 1.0]);
        assert!(reconcile_group_targets(&mut t, &lo, &hi));
        let total: f64 = t.iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "fully invested: {total}");
        assert_eq!((t[0], t[2]), (0.0, 0.0));
        assert!(t
            .iter()
            .zip(lo.iter().zip(&hi))
            .all(|(&x, (&l, &h))| x >= l - 1e-12 && x <= h + 1e-12));
        // Feasible targets are left alone.
        let mut t = vec![0.2, 0.8];
        assert!(!reconcile_group_targets(&mut t, &[0.0, 0.0], &[1.0, 1.0]));
        assert_eq!(t, vec![0.2, 0.8]);
        // No room anywhere: unchanged, and the caller reports the rebalance infeasible.
        let mut t = vec![0.5, 0.5];
        assert!(!reconcile_group_targets(&mut t, &[0.0, 0.0], &[0.5, 0.0]));
        assert_eq!(t, vec![0.5, 0.5]);
    }
}
