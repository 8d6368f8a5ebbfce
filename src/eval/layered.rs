//! Factor evaluation (docs/evaluation.md): neutralized RankIC and the 5-group layered backtest.
//!
//! Schedule: signal dates are every 10th trading date from the first date the factor covers
//! (dates whose universe is empty are skipped). On each signal date t:
//! 1. universe of docs/data.md for IC evaluation ([`Universe::Eval`]: also drops limit-down at t+1);
//! 2. the factor is neutralized over the universe's stocks ([`neutralize`]: industry dummies +
//!    size, OLS residual);
//! 3. RankIC = Spearman(neutralized factor, raw label `vwap_{t+11}/vwap_{t+1} − 1`);
//! 4. the stocks are sorted by the neutralized factor into 5 equal groups (G1 lowest … G5 top,
//!    ties broken by stock order), each held equal-weighted from t+1's VWAP to the next
//!    rebalance's, paying `cost` per side on turnover ([`super::book`]). The benchmark is the
//!    equal-weighted universe (the same ranked stocks), held the same way without costs.
//!
//! Per group: annualized excess return `Π(1 + r_g − r_b)^(242/D) − 1`. Long-short: daily
//! `r_top − r_bottom` (after costs), annualized and its Sharpe. TOP: information ratio of
//! `r_top − r_b`, monthly win rate against the benchmark, max drawdown of the excess NAV.

use serde::Serialize;

use super::book::run_book;
use super::ic::{rank_ic_series, IcSummary};
use super::neutralize::neutralize;
use super::stats::{annualized_return, excess, max_drawdown, monthly_win_rate, nav, sharpe};
use crate::data::panel::PanelView;
use crate::data::samples::{raw_labels, spearman, SampleIndex, Universe, HORIZON};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LayerConfig {
    /// Trading days between signal dates.
    pub every: usize,
    pub groups: usize,
    /// Cost per side as a fraction of traded value.
    pub cost: f64,
}

impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            every: 10,
            groups: 5,
            cost: 0.002,
        }
    }
}

/// Everything computed for one factor.
#[derive(Debug, Clone, Serialize)]
pub struct FactorEval {
    /// Neutralized RankIC.
    pub ic: IcSummary,
    /// RankIC of the factor as given (not neutralized), for comparison.
    pub raw_ic: IcSummary,
    /// (date index, neutralized RankIC) per signal date.
    pub ic_series: Vec<(usize, f64)>,
    /// Per style of the panel: the mean over signal dates of the Spearman correlation between
    /// the factor as given and the style exposure, over the date's universe (v2.2's loss aims
    /// to bring these towards 0).
    pub style_exposure: Vec<f64>,
    pub layers: Layers,
    pub summary: LayerSummary,
    /// Signal dates left out of the layered backtest because the factor had fewer distinct
    /// values than groups among the date's stocks (ties would be split by their order in the
    /// file, not by the factor).
    pub degenerate_dates: usize,
}

/// Daily series of the layered backtest.
#[derive(Debug, Clone, Serialize)]
pub struct Layers {
    /// Panel date index of each daily return (first: the first trade day).
    pub days: Vec<usize>,
    /// Per group (G1 lowest … top last), daily returns after costs.
    pub groups: Vec<Vec<f64>>,
    pub benchmark: Vec<f64>,
    /// Per group, two-way turnover at each rebalance.
    pub turnover: Vec<Vec<f64>>,
    pub signal_dates: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    /// Annualized excess return per group, G1 … top.
    pub group_excess: Vec<f64>,
    pub long_short_return: f64,
    pub long_short_sharpe: f64,
    pub top_ir: f64,
    pub top_win_rate: f64,
    pub top_excess_max_drawdown: f64,
    /// Mean two-way turnover of the top group per rebalance (the first build excluded).
    pub top_turnover: f64,
}

/// Group of each value (0 = lowest … `groups − 1` = highest): position k of n in ascending
/// order (ties by input order) goes to group `k · groups / n`, so group sizes differ by at most
/// one.
pub fn quantile_groups(values: &[f64], groups: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let mut out = vec![0; values.len()];
    for (k, &i) in order.iter().enumerate() {
        out[i] = k * groups / values.len();
    }
    out
}

/// The date span `[first, last]` over which `factor` (`[T, N]`) has a finite value.
pub fn factor_span(factor: &[f32], n_stocks: usize) -> Option<(usize, usize)> {
    let has = |t: &usize| {
        factor[t * n_stocks..(t + 1) * n_stocks]
            .iter()
            .any(|v| v.is_finite())
    };
    let t_len = factor.len() / n_stocks.max(1);
    let first = (0..t_len).find(has)?;
    let last = (0..t_len).rev().find(has)?;
    Some((first, last))
}

/// Neutralized RankIC and layered backtest of `factor` (`[T, N]` over the whole panel), on
/// signal dates counted from the first date it has a value.
pub fn evaluate(p: PanelView, factor: &[f32], cfg: &LayerConfig) -> Result<FactorEval> {
    assert_eq!(
        factor.len(),
        p.n_dates * p.n_stocks,
        "evaluate: factor shape"
    );
    let span = factor_span(factor, p.n_stocks)
        .ok_or_else(|| Error::Data("the factor has no finite value".into()))?;
    evaluate_on(p, factor, cfg, span)
}

/// Per style k: the mean over `index`'s dates (those with a defined correlation) of
/// Spearman(factor, style k) over the date's stocks; NaN where no date has one.
fn style_exposure(p: PanelView, factor: &[f32], index: &SampleIndex) -> Vec<f64> {
    let (n, k) = (p.n_stocks, p.n_styles);
    (0..k)
        .map(|s| {
            let ics: Vec<f64> = (index.dates.iter().zip(&index.per_date))
                .map(|(&t, stocks)| {
                    let at = |i: &u32| t as usize * n + *i as usize;
                    let f: Vec<f32> = stocks.iter().map(|i| factor[at(i)]).collect();
                    let x: Vec<f32> = stocks.iter().map(|i| p.styles[at(i) * k + s]).collect();
                    spearman(&f, &x)
                })
                .filter(|c| c.is_finite())
                .collect();
            ics.iter().sum::<f64>() / ics.len() as f64
        })
        .collect()
}

/// [`evaluate`] on the signal dates of the span `(first, last)` — every `cfg.every` dates from
/// `first` — rather than the factor's own span: a factor scored on another factor's span
/// (a baseline restricted to a model's cells) gets the same signal dates wherever it has values.
pub fn evaluate_on(
    p: PanelView,
    factor: &[f32],
    cfg: &LayerConfig,
    (first, last): (usize, usize),
) -> Result<FactorEval> {
    let n = p.n_stocks;
    assert_eq!(factor.len(), p.n_dates * n, "evaluate: factor shape");
    assert!(first <= last && last < p.n_dates, "evaluate: span");
    let end = (last + 1).min(p.n_dates.saturating_sub(HORIZON));
    if first >= end {
        return Err(Error::Data(format!(
            "the factor covers {}..{}, which leaves no date with a known 10-day return \
             (the panel ends {})",
            p.dates[first],
            p.dates[last],
            p.dates[p.n_dates - 1]
        )));
    }
    let index = SampleIndex::build_for(p, first..end, cfg.every, Universe::Eval)?;
    let labels = raw_labels(p);

    let mut neutral = vec![f32::NAN; factor.len()];
    for (&t, stocks) in index.dates.iter().zip(&index.per_date) {
        let row = t as usize * n;
        let at = |i: &u32| row + *i as usize;
        let f: Vec<f64> = stocks.iter().map(|i| factor[at(i)] as f64).collect();
        let ind: Vec<i16> = stocks.iter().map(|i| p.industry[at(i)]).collect();
        let size: Vec<f64> = stocks.iter().map(|i| p.size[at(i)] as f64).collect();
        for (i, e) in stocks.iter().zip(neutralize(&f, &ind, &size)) {
            neutral[at(i)] = e as f32;
        }
    }
    let ic_series = rank_ic_series(&neutral, &labels, n, &index, 1);
    let raw_series = rank_ic_series(factor, &labels, n, &index, 1);
    let ics = |s: &[(usize, f64)]| IcSummary::of(&s.iter().map(|x| x.1).collect::<Vec<_>>());

    // Per signal date: the ranked stocks and their groups.
    let mut signals: Vec<(usize, Vec<usize>, Vec<usize>)> = Vec::new();
    let mut degenerate_dates = 0;
    for &t in &index.dates {
        let t = t as usize;
        let (stocks, values): (Vec<usize>, Vec<f64>) = (0..n)
            .filter(|&i| neutral[t * n + i].is_finite())
            .map(|i| (i, neutral[t * n + i] as f64))
            .unzip();
        if stocks.len() >= cfg.groups && distinct(factor, t * n, &stocks) < cfg.groups {
            degenerate_dates += 1;
        } else if stocks.len() >= cfg.groups {
            let g = quantile_groups(&values, cfg.groups);
            signals.push((t, stocks, g));
        }
    }
    if signals.is_empty() && degenerate_dates > 0 {
        return Err(Error::Data(format!(
            "the factor has fewer than {} distinct values among the stocks of every signal date \
             ({degenerate_dates} dates): a constant factor ranks nothing (check the file's values)",
            cfg.groups
        )));
    }
    if signals.is_empty() {
        return Err(Error::Data(format!(
            "no signal date has {} stocks with a neutralized factor value",
            cfg.groups
        )));
    }
    let trade_days: Vec<usize> = signals.iter().map(|s| s.0 + 1).collect();
    let last_day = signals[signals.len() - 1].0 + HORIZON;
    let equal_weights = |k: usize, member: &dyn Fn(usize) -> bool| {
        let (_, stocks, groups) = &signals[k];
        let mut w = vec![0.0; n];
        let chosen: Vec<usize> = (0..stocks.len()).filter(|&j| member(groups[j])).collect();
        for &j in &chosen {
            w[stocks[j]] = 1.0 / chosen.len() as f64;
        }
        w
    };
    let mut groups = Vec::new();
    let mut turnover = Vec::new();
    for g in 0..cfg.groups {
        let run = run_book(p, &trade_days, last_day, cfg.cost, |k, _| {
            Ok(equal_weights(k, &|x| x == g))
        })?;
        groups.push(run.returns);
        turnover.push(run.turnover);
    }
    let bench = run_book(p, &trade_days, last_day, 0.0, |k, _| {
        Ok(equal_weights(k, &|_| true))
    })?
    .returns;
    let layers = Layers {
        days: (trade_days[0]..=last_day).collect(),
        groups,
        benchmark: bench,
        turnover,
        signal_dates: signals.iter().map(|s| s.0).collect(),
    };
    let summary = summarize(&layers, p.dates);
    Ok(FactorEval {
        ic: ics(&ic_series),
        raw_ic: ics(&raw_series),
        ic_series,
        style_exposure: style_exposure(p, factor, &index),
        layers,
        summary,
        degenerate_dates,
    })
}

/// Distinct values of `factor[row + i]` over `stocks`.
fn distinct(factor: &[f32], row: usize, stocks: &[usize]) -> usize {
    let mut v: Vec<f32> = stocks.iter().map(|&i| factor[row + i]).collect();
    v.sort_by(f32::total_cmp);
    v.dedup();
    v.len()
}

fn summarize(l: &Layers, dates: &[String]) -> LayerSummary {
    let top = &l.groups[l.groups.len() - 1];
    let bottom = &l.groups[0];
    let long_short = excess(top, bottom);
    let top_excess = excess(top, &l.benchmark);
    let day_dates: Vec<String> = l.days.iter().map(|&d| dates[d].clone()).collect();
    let top_turn = &l.turnover[l.turnover.len() - 1];
    LayerSummary {
        group_excess: l
            .groups
            .iter()
            .map(|g| annualized_return(&excess(g, &l.benchmark)))
            .collect(),
        long_short_return: annualized_return(&long_short),
        long_short_sharpe: sharpe(&long_short),
        top_ir: sharpe(&top_excess),
        top_win_rate: monthly_win_rate(&day_dates, top, &l.benchmark),
        top_excess_max_drawdown: max_drawdown(&top_excess),
        top_turnover: if top_turn.len() > 1 {
            top_turn[1..].iter().sum::<f64>() / (top_turn.len() - 1) as f64
        } else {
            f64::NAN
        },
    }
}

impl Layers {
    /// Excess NAV `Π(1 + r_g − r_b)` of each group, G1 … top.
    pub fn excess_navs(&self) -> Vec<Vec<f64>> {
        self.groups
            .iter()
            .map(|g| nav(&excess(g, &self.benchmark)))
            .collect()
    }

    /// NAV of the daily long-short return `r_top − r_bottom`.
    pub fn long_short_nav(&self) -> Vec<f64> {
        nav(&excess(
            &self.groups[self.groups.len() - 1],
            &self.groups[0],
        ))
    }
}
