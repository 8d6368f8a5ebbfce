//! `alphanet eval`: neutralized RankIC and the 5-group layered backtest of one or more factors
//! on a panel, written as `report.md` (one row per factor, the report's layout),
//! `metrics.json` and PNG charts in a new output folder. With `--baselines` the classic
//! one-line factors (`eval::baselines`) are scored beside them, restricted to the dates and
//! stocks of the first factor.

use std::path::{Path, PathBuf};

use crate::data::panel::{Panel, PanelView};
use crate::eval::baselines::{restrict, Baseline};
use crate::eval::chart::{line_chart, Line};
use crate::eval::factor::FactorSpec;
use crate::eval::ic::{by_year, IcSummary};
use crate::eval::layered::{evaluate, evaluate_on, factor_span, FactorEval, LayerConfig};
use crate::util::fs::{write_dir_atomically, write_file_atomically, write_json_atomically};
use crate::{Error, Result};

/// The arguments of `alphanet eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalCommand {
    #[arg(long)]
    pub panel: PathBuf,
    /// NAME=PATH: a long CSV (date,code,factor) or a .npy [T, N] (NAME=PATH@FIRST_DATE when
    /// it covers fewer dates than the panel). Repeat for several factors.
    #[arg(long = "factor", required = true)]
    pub factors: Vec<String>,
    /// Report folder to create.
    #[arg(long)]
    pub out: PathBuf,
    /// Trading days between rebalances / IC dates.
    #[arg(long, default_value_t = LayerConfig::default().every)]
    pub every: usize,
    #[arg(long, default_value_t = LayerConfig::default().groups)]
    pub groups: usize,
    /// Cost per side as a fraction of traded value.
    #[arg(long, default_value_t = LayerConfig::default().cost, allow_negative_numbers = true)]
    pub cost: f64,
    /// Also score the classic one-line factors (reversal5, reversal20, corr_cv10,
    /// turnover20, volatility20; alone: all, or a comma-separated subset) on the first
    /// factor's dates and stocks.
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "LIST")]
    pub baselines: Option<String>,
}

impl EvalCommand {
    pub fn options(self) -> Result<EvalOptions> {
        let (every, groups, cost) = (self.every, self.groups, self.cost);
        if every == 0 || groups < 2 || !(0.0..0.5).contains(&cost) {
            return Err(Error::Config(format!(
                "--every {every} must be ≥ 1, --groups {groups} ≥ 2, --cost {cost} in [0, 0.5)"
            )));
        }
        Ok(EvalOptions {
            panel: self.panel,
            factors: self
                .factors
                .iter()
                .map(|f| FactorSpec::parse(f))
                .collect::<Result<_>>()?,
            out: self.out,
            layers: LayerConfig {
                every,
                groups,
                cost,
            },
            baselines: match self.baselines {
                Some(list) => Baseline::parse_list(&list)?,
                None => Vec::new(),
            },
        })
    }

    pub fn run(self) -> Result<()> {
        run(&self.options()?)?;
        Ok(())
    }
}

pub struct EvalOptions {
    pub panel: PathBuf,
    pub factors: Vec<FactorSpec>,
    pub out: PathBuf,
    pub layers: LayerConfig,
    /// Baselines to score beside the factors (empty: none), restricted to the first factor.
    pub baselines: Vec<Baseline>,
}

/// Where an evaluated factor came from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A `--factor NAME=PATH`.
    File(FactorSpec),
    /// A baseline computed from the panel, restricted to the cells where `restricted_to` (the
    /// first factor) has a value; `coverage` = share of those cells where it is defined.
    Baseline {
        baseline: Baseline,
        restricted_to: String,
        coverage: f64,
    },
}

impl Source {
    fn json(&self) -> serde_json::Value {
        match self {
            Source::File(spec) => serde_json::json!({ "kind": "factor", "file": spec.path }),
            Source::Baseline {
                baseline,
                restricted_to,
                coverage,
            } => serde_json::json!({
                "kind": "baseline",
                "formula": baseline.formula(),
                "restricted_to": restricted_to,
                "coverage": coverage,
            }),
        }
    }
}

/// How factors are neutralized on a panel with industry data.
pub const BY_INDUSTRY_AND_SIZE: &str = "industry dummies + log market cap";
/// How they are neutralized on a panel without (docs/evaluation.md).
pub const BY_SIZE_ONLY: &str =
    "log market cap only: the panel has no industry data (imported without --industry)";

/// The industries neutralization uses: the panel's, or, when no stock of the panel has a known
/// industry, one common industry for every stock (so that factors are neutralized by size
/// alone), with the description of what was done. The second case is announced on stderr.
pub fn neutralization_industries(panel: &Panel) -> (Option<Vec<i16>>, &'static str) {
    if panel.industry().iter().any(|&k| k >= 0) {
        return (None, BY_INDUSTRY_AND_SIZE);
    }
    eprintln!(
        "note: panel {} has no industry data: industry is left out and size alone is neutralized / matched (re-import with --industry CSV to include industries)",
        panel.dir().display()
    );
    (Some(vec![0; panel.industry().len()]), BY_SIZE_ONLY)
}

/// The panel as evaluation sees it: with `one_industry` (from [`neutralization_industries`])
/// in place of its industries when it has none.
pub fn neutralization_view<'a>(
    panel: &'a Panel,
    one_industry: &'a Option<Vec<i16>>,
) -> PanelView<'a> {
    match one_industry {
        Some(industry) => PanelView {
            industry,
            ..panel.view()
        },
        None => panel.view(),
    }
}

/// A file-name-safe form of a factor name.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn run(opts: &EvalOptions) -> Result<Vec<(String, FactorEval)>> {
    if opts.factors.is_empty() {
        return Err(Error::Config(if opts.baselines.is_empty() {
            "give at least one --factor NAME=PATH".into()
        } else {
            "--baselines is scored on the dates and stocks of the first --factor: give one".into()
        }));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = opts.factors.iter().find(|f| !seen.insert(slug(&f.name))) {
        return Err(Error::Config(format!(
            "--factor name {:?} is used twice (names must differ after mapping to file names)",
            dup.name
        )));
    }
    if let Some(b) = opts
        .baselines
        .iter()
        .find(|b| seen.contains(&slug(b.name())))
    {
        return Err(Error::Config(format!(
            "--factor name {:?} is also a baseline's name: rename the factor",
            b.name()
        )));
    }
    crate::util::fs::check_output_creatable(&opts.out)?;
    let panel = Panel::open(&opts.panel)?;
    let (one_industry, neutralization) = neutralization_industries(&panel);
    let view = neutralization_view(&panel, &one_industry);
    let mut evals = Vec::new();
    let mut sources = Vec::new();
    let mut first_factor = None;
    for spec in &opts.factors {
        let factor = spec.load(&panel)?;
        eprintln!("evaluating {} ({})", spec.name, spec.path.display());
        let e = evaluate(view, &factor, &opts.layers)
            .map_err(|e| Error::Data(format!("factor {}: {e}", spec.name)))?;
        if e.degenerate_dates > 0 {
            eprintln!(
                "warning: factor {}: {} signal dates have fewer than {} distinct values and are \
                 left out of the layered backtest",
                spec.name, e.degenerate_dates, opts.layers.groups
            );
        }
        evals.push((spec.name.clone(), e));
        sources.push(Source::File(spec.clone()));
        first_factor.get_or_insert(factor);
    }
    let model = first_factor.expect("at least one factor");
    let first = &opts.factors[0].name;
    // The first factor was evaluated, so it has a span; baselines take its signal dates.
    let span = factor_span(&model, panel.n_stocks()).expect("an evaluated factor has values");
    for &b in &opts.baselines {
        let (factor, coverage) = restrict(&b.compute(panel.view()), &model);
        eprintln!(
            "evaluating baseline {} = {} on {first}'s dates and stocks ({:.1}% of them)",
            b.name(),
            b.formula(),
            100.0 * coverage
        );
        let e = evaluate_on(view, &factor, &opts.layers, span)
            .map_err(|e| Error::Data(format!("baseline {}: {e}", b.name())))?;
        evals.push((b.name().to_string(), e));
        sources.push(Source::Baseline {
            baseline: b,
            restricted_to: first.clone(),
            coverage,
        });
    }
    write_dir_atomically(&opts.out, |dir| {
        write_outputs(dir, &panel, opts, &evals, &sources, neutralization)
    })?;
    print!("{}", main_table(&evals));
    println!("report: {}", opts.out.join("report.md").display());
    Ok(evals)
}

fn write_outputs(
    dir: &Path,
    panel: &Panel,
    opts: &EvalOptions,
    evals: &[(String, FactorEval)],
    sources: &[Source],
    neutralization: &str,
) -> Result<()> {
    let dates = &panel.meta().dates;
    // Cumulative RankIC over the union of signal dates (each factor on its own dates).
    let mut signal_days: Vec<usize> = evals
        .iter()
        .flat_map(|(_, e)| e.ic_series.iter().map(|x| x.0))
        .collect();
    signal_days.sort_unstable();
    signal_days.dedup();
    let cum_lines: Vec<Line> = evals
        .iter()
        .map(|(name, e)| {
            // NaN (not drawn) before the factor's first date, flat across dates it skips.
            let mut acc = f64::NAN;
            let mut it = e.ic_series.iter().peekable();
            let values = signal_days
                .iter()
                .map(|&t| {
                    if let Some((_, ic)) = it.next_if(|x| x.0 == t) {
                        acc = if acc.is_nan() { *ic } else { acc + ic };
                    }
                    acc
                })
                .collect();
            Line {
                name: name.clone(),
                values,
            }
        })
        .collect();
    let label_dates: Vec<String> = signal_days.iter().map(|&t| dates[t].clone()).collect();
    line_chart(
        &dir.join("ic_cumulative.png"),
        "Cumulative neutralized RankIC (every 10 trading days)",
        "cumulative RankIC",
        &label_dates,
        &cum_lines,
        Some(0.0),
    )?;

    let mut charts = vec!["ic_cumulative.png".to_string()];
    for (name, e) in evals {
        let day_dates: Vec<String> = e.layers.days.iter().map(|&d| dates[d].clone()).collect();
        let g = e.layers.groups.len();
        let lines: Vec<Line> = e
            .layers
            .excess_navs()
            .into_iter()
            .enumerate()
            .map(|(k, values)| Line {
                name: group_name(k, g),
                values,
            })
            .collect();
        let file = format!("groups_{}.png", slug(name));
        line_chart(
            &dir.join(&file),
            &format!("{name}: excess NAV of each group over the equal-weighted universe"),
            "excess NAV",
            &day_dates,
            &lines,
            Some(1.0),
        )?;
        charts.push(file);
    }
    // Long-short NAVs share one chart when the factors share their days (the usual case).
    let same_days = evals
        .iter()
        .all(|(_, e)| e.layers.days == evals[0].1.layers.days);
    let ls_groups: Vec<Vec<&(String, FactorEval)>> = if same_days {
        vec![evals.iter().collect()]
    } else {
        evals.iter().map(|e| vec![e]).collect()
    };
    for group in ls_groups {
        let file = if same_days {
            "long_short.png".to_string()
        } else {
            format!("long_short_{}.png", slug(&group[0].0))
        };
        let day_dates: Vec<String> = group[0]
            .1
            .layers
            .days
            .iter()
            .map(|&d| dates[d].clone())
            .collect();
        let lines: Vec<Line> = group
            .iter()
            .map(|(name, e)| Line {
                name: name.clone(),
                values: e.layers.long_short_nav(),
            })
            .collect();
        line_chart(
            &dir.join(&file),
            "Long-short NAV (top group − bottom group, daily, after costs)",
            "NAV",
            &day_dates,
            &lines,
            Some(1.0),
        )?;
        charts.push(file);
    }

    let metrics = serde_json::json!({
        "panel": panel.dir(),
        "config": opts.layers,
        "neutralization": neutralization,
        "factors": evals.iter().zip(sources).map(|((name, e), source)| {
            let mut entry = serde_json::json!({
            "name": name,
            "first_signal": dates[e.layers.signal_dates[0]],
            "last_signal": dates[e.layers.signal_dates[e.layers.signal_dates.len() - 1]],
            "rank_ic": e.ic,
            "raw_rank_ic": e.raw_ic,
            "rank_ic_by_year": by_year(&e.ic_series, dates).into_iter()
                .map(|(y, v)| (y, serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "rank_ic_series": e.ic_series.iter().map(|(t, ic)| (dates[*t].clone(), *ic)).collect::<Vec<_>>(),
            "style_exposure": panel.meta().style_names.iter().zip(&e.style_exposure)
                .map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "layers": e.summary,
            "degenerate_signal_dates": e.degenerate_dates,
            });
            if let (Some(entry), serde_json::Value::Object(extra)) = (entry.as_object_mut(), source.json()) {
                entry.extend(extra);
            }
            entry
        }).collect::<Vec<_>>(),
        "charts": charts,
    });
    write_json_atomically(&dir.join("metrics.json"), &metrics)?;
    let report = render_report(panel, opts, evals, sources, &charts, neutralization);
    write_file_atomically(&dir.join("report.md"), report.as_bytes())
}

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

fn group_name(k: usize, groups: usize) -> String {
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

fn render_report(
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
