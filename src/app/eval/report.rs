//! The text of `report.md`: the headline table ([`main_table`], also printed by `eval`), the
//! baselines, RankIC (overall and by year), style exposure and the layered backtest, with the
//! figures formatted by [`pct`] and [`num`] (which `enhance`'s report shares).

use super::options::{EvalOptions, Source};
use crate::data::panel::Panel;
use crate::eval::baselines::Baseline;
use crate::eval::ic::{by_year, IcSummary};
use crate::eval::layered::FactorEval;

/// Mean neutralized RankIC per calendar year, one row per factor, one column per year that
/// any factor has signal dates in (`–` where a factor has none).
fn year_table(evals: &[(String, FactorEval)], dates: &[String]) -> String {
    let per: Vec<Vec<(String, IcSummary)>> = evals
        .iter()
        .map(|(_, e)| by_year(&e.ic_series, dates))
        .collect();
    let mut years: Vec<&str> = per.iter().flatten().map(|(y, _)| y.as_str()).collect();
    years.sort_unstable();
    years.dedup();
    let mut s = String::from(
        "\n### RankIC by year\n\nMean neutralized RankIC of each year's signal dates:\n\n| factor |",
    );
    for y in &years {
        s += &format!(" {y} |");
    }
    s += &format!("\n|---|{}\n", "---|".repeat(years.len()));
    for ((name, _), rows) in evals.iter().zip(&per) {
        s += &format!("| {name} |");
        for y in &years {
            s += &match rows.iter().find(|(r, _)| r == y) {
                Some((_, v)) => format!(" {} |", pct(v.mean)),
                None => " – |".into(),
            };
        }
        s += "\n";
    }
    s
}

pub(super) fn group_name(k: usize, groups: usize) -> String {
    match k {
        0 => "G1 (bottom)".into(),
        _ if k + 1 == groups => format!("G{groups} (top)"),
        _ => format!("G{}", k + 1),
    }
}

/// A fraction as a table percentage ("–" when undefined).
pub(crate) fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}%", 100.0 * x)
    } else {
        "–".into()
    }
}

/// A ratio for a table ("–" when undefined).
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "–".into()
    }
}

/// The headline table of the report (docs/evaluation.md), one row per factor.
pub fn main_table(evals: &[(String, FactorEval)]) -> String {
    let mut s = String::from(
        "| factor | RankIC mean | RankIC std | IC_IR | IC>0 | top-group ann. excess | long-short ann. | LS Sharpe | TOP IR | TOP win |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, e) in evals {
        let l = &e.summary;
        s += &format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            pct(e.ic.mean),
            pct(e.ic.std),
            num(e.ic.ir),
            pct(e.ic.positive),
            pct(l.group_excess[l.group_excess.len() - 1]),
            pct(l.long_short_return),
            num(l.long_short_sharpe),
            num(l.top_ir),
            pct(l.top_win_rate)
        );
    }
    s
}

pub(super) fn render_report(
    panel: &Panel,
    opts: &EvalOptions,
    evals: &[(String, FactorEval)],
    sources: &[Source],
    charts: &[String],
    neutralization: &str,
) -> String {
    let dates = &panel.meta().dates;
    let cfg = &opts.layers;
    let g = cfg.groups;
    let mut s = String::from("# Factor evaluation\n\n");
    s += &format!(
        "Panel `{}` ({} source, {} stocks, {} .. {}).\n\n\
         Every {} trading days t: universe of docs/data.md (listed, not ST, not suspended at t or t+1, \
         no limit-up or limit-down open at t+1, 30 days of history); factor neutralized per date \
         (OLS residual on {neutralization}); RankIC = Spearman correlation with the \
         raw return `vwap(t+11) / vwap(t+1) − 1`. Layered backtest: {g} equal groups by the \
         neutralized factor, equal weight, traded at t+1's VWAP and held to the next rebalance, \
         {:.2}% cost per side on turnover; benchmark = the equal-weighted universe (no costs). \
         Annualized over 242 days; excess returns are daily differences compounded; Sharpe and IR \
         are mean/std·√242 of daily (excess) returns.\n\n",
        panel.dir().display(),
        panel.meta().source,
        panel.n_stocks(),
        dates[0],
        dates[dates.len() - 1],
        cfg.every,
        100.0 * cfg.cost
    );
    s += "## Summary\n\n";
    s += &main_table(evals);
    let baselines: Vec<(&str, Baseline, f64)> = evals
        .iter()
        .zip(sources)
        .filter_map(|((name, _), src)| match src {
            Source::Baseline {
                baseline, coverage, ..
            } => Some((name.as_str(), *baseline, *coverage)),
            Source::File(_) => None,
        })
        .collect();
    if !baselines.is_empty() {
        s += &format!(
            "\n## Baselines\n\nClassic one-line factors computed from the panel's raw features \
             (adjusted close, volume, turn, return1; docs/evaluation.md), signed so that a \
             positive RankIC means the classic effect holds (low past return, low correlation of \
             price and volume, low turnover, low volatility rank high). Each is **restricted to \
             the dates and stocks where `{}` has a value**, so every row is scored on the same \
             universe, then neutralized, ranked and backtested exactly as the factors above. \
             Coverage: the share of `{}`'s values where the baseline is defined too.\n\n\
             | baseline | formula | coverage |\n|---|---|---|\n",
            opts.factors[0].name, opts.factors[0].name
        );
        for (name, b, coverage) in baselines {
            s += &format!("| {name} | `{}` | {} |\n", b.formula(), pct(coverage));
        }
    }
    s += "\n## RankIC\n\n| factor | signal dates | span | RankIC mean | RankIC std | IC_IR | IC>0 | raw (not neutralized) RankIC mean | raw IC_IR |\n|---|---|---|---|---|---|---|---|---|\n";
    for (name, e) in evals {
        let sd = &e.layers.signal_dates;
        s += &format!(
            "| {name} | {} | {} .. {} | {} | {} | {} | {} | {} | {} |\n",
            e.ic.dates,
            dates[sd[0]],
            dates[sd[sd.len() - 1]],
            pct(e.ic.mean),
            pct(e.ic.std),
            num(e.ic.ir),
            pct(e.ic.positive),
            pct(e.raw_ic.mean),
            num(e.raw_ic.ir)
        );
    }
    s += &year_table(evals, dates);
    for (name, e) in evals.iter().filter(|(_, e)| e.degenerate_dates > 0) {
        s += &format!(
            "\n**{name}**: {} of {} signal dates left out of the layered backtest: fewer than {} \
             distinct factor values among the date's stocks (ties cannot be ranked into groups).\n",
            e.degenerate_dates,
            e.degenerate_dates + e.layers.signal_dates.len(),
            opts.layers.groups
        );
    }
    s += "\n![cumulative RankIC](ic_cumulative.png)\n\n";
    let styles = &panel.meta().style_names;
    if !styles.is_empty() {
        s += "## Style exposure\n\nMean over signal dates of the Spearman correlation between the factor as \
              given (before neutralization) and each style exposure of the panel, over the date's \
              universe: how much of the factor is a known style.\n\n| factor |";
        for k in styles {
            s += &format!(" {k} |");
        }
        s += &format!("\n|---|{}\n", "---|".repeat(styles.len()));
        for (name, e) in evals {
            s += &format!("| {name} |");
            for v in &e.style_exposure {
                s += &if v.is_finite() {
                    format!(" {v:+.3} |")
                } else {
                    " – |".into()
                };
            }
            s += "\n";
        }
        s += "\n";
    }
    s += "## Layered backtest\n\nAnnualized excess return of each group over the equal-weighted universe:\n\n| factor |";
    for k in 0..g {
        s += &format!(" {} |", group_name(k, g));
    }
    s += " long-short ann. | LS Sharpe | TOP IR | TOP monthly win | TOP excess max DD | TOP turnover / rebalance |\n|---|";
    s += &"---|".repeat(g + 6);
    s += "\n";
    for (name, e) in evals {
        let l = &e.summary;
        s += &format!("| {name} |");
        for x in &l.group_excess {
            s += &format!(" {} |", pct(*x));
        }
        s += &format!(
            " {} | {} | {} | {} | {} | {} |\n",
            pct(l.long_short_return),
            num(l.long_short_sharpe),
            num(l.top_ir),
            pct(l.top_win_rate),
            pct(l.top_excess_max_drawdown),
            pct(l.top_turnover)
        );
    }
    s += "\n";
    for c in charts.iter().filter(|c| c.as_str() != "ic_cumulative.png") {
        s += &format!("![{c}]({c})\n\n");
    }
    s += "Files: `metrics.json` (all numbers, the RankIC series), the charts above.\n";
    s
}
