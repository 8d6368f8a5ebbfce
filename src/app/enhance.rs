//! `alphanet enhance`: the index-enhancement backtest of one factor against a benchmark the
//! panel carries (`index.npy`, see `data::panel`), written as `report.md` with the report's
//! performance table, `metrics.json` and a NAV chart in a new output folder.

use std::path::PathBuf;

use super::eval::{num, pct};
use crate::data::panel::Panel;
use crate::eval::chart::{line_chart, Line};
use crate::eval::enhance::{enhance, EnhanceConfig, EnhanceResult};
use crate::eval::factor::FactorSpec;
use crate::eval::stats::{excess, nav};
use crate::util::fs::{write_dir_atomically, write_file_atomically, write_json_atomically};
use crate::{Error, Result};

/// The arguments of `alphanet enhance`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnhanceCommand {
    #[arg(long)]
    pub panel: PathBuf,
    /// NAME=PATH as for `eval`.
    #[arg(long)]
    pub factor: String,
    /// Benchmark name in the panel's meta.json (default: its only one).
    #[arg(long)]
    pub benchmark: Option<String>,
    #[arg(long)]
    pub out: PathBuf,
    /// Per-stock bound on |w − benchmark weight|.
    #[arg(long, default_value_t = EnhanceConfig::default().max_deviation, allow_negative_numbers = true)]
    pub max_deviation: f64,
    /// Cap on two-way turnover per rebalance.
    #[arg(long, default_value_t = EnhanceConfig::default().max_turnover, allow_negative_numbers = true)]
    pub max_turnover: f64,
    #[arg(long, default_value_t = EnhanceConfig::default().cost, allow_negative_numbers = true)]
    pub cost: f64,
}

impl EnhanceCommand {
    pub fn options(self) -> Result<EnhanceOptions> {
        Ok(EnhanceOptions {
            panel: self.panel,
            factor: FactorSpec::parse(&self.factor)?,
            benchmark: self.benchmark,
            out: self.out,
            config: EnhanceConfig {
                max_deviation: self.max_deviation,
                max_turnover: self.max_turnover,
                cost: self.cost,
            },
        })
    }

    pub fn run(self) -> Result<()> {
        run(&self.options()?)?;
        Ok(())
    }
}

pub struct EnhanceOptions {
    pub panel: PathBuf,
    pub factor: FactorSpec,
    /// Benchmark name from the panel's `meta.benchmarks`; `None` picks the only one.
    pub benchmark: Option<String>,
    pub out: PathBuf,
    pub config: EnhanceConfig,
}

pub fn run(opts: &EnhanceOptions) -> Result<EnhanceResult> {
    crate::util::fs::check_output_creatable(&opts.out)?;
    let c = &opts.config;
    if !(c.max_deviation > 0.0 && c.max_turnover > 0.0 && (0.0..0.5).contains(&c.cost)) {
        return Err(Error::Config(format!(
            "--max-deviation {} and --max-turnover {} must be positive, --cost {} in [0, 0.5)",
            c.max_deviation, c.max_turnover, c.cost
        )));
    }
    let panel = Panel::open(&opts.panel)?;
    let name = match &opts.benchmark {
        Some(b) => b.clone(),
        None => match panel.meta().benchmarks.as_slice() {
            [only] => only.name.clone(),
            _ => {
                return Err(Error::Config(format!(
                    "--benchmark: panel {} has benchmarks {:?}; name one",
                    panel.dir().display(),
                    panel
                        .meta()
                        .benchmarks
                        .iter()
                        .map(|b| &b.name)
                        .collect::<Vec<_>>()
                )))
            }
        },
    };
    let bench = panel.benchmark_weights(&name)?;
    let factor = opts.factor.load(&panel)?;
    let (one_industry, _) = super::eval::neutralization_industries(&panel);
    let view = super::eval::neutralization_view(&panel, &one_industry);
    let r = enhance(view, &factor, &bench, c)?;
    let weighting = panel
        .meta()
        .benchmarks
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.weighting.clone())
        .unwrap_or_default();
    write_dir_atomically(&opts.out, |dir| {
        let dates = &panel.meta().dates;
        let day_dates: Vec<String> = r.days.iter().map(|&d| dates[d].clone()).collect();
        line_chart(
            &dir.join("nav.png"),
            &format!("{}: enhanced portfolio vs {name}", opts.factor.name),
            "NAV",
            &day_dates,
            &[
                Line {
                    name: "portfolio (after costs)".into(),
                    values: nav(&r.returns),
                },
                Line {
                    name: format!("benchmark {name}"),
                    values: nav(&r.benchmark),
                },
                Line {
                    name: "excess".into(),
                    values: nav(&excess(&r.returns, &r.benchmark)),
                },
            ],
            Some(1.0),
        )?;
        let metrics = serde_json::json!({
            "panel": panel.dir(),
            "factor": { "name": opts.factor.name, "file": opts.factor.path },
            "benchmark": { "name": name, "weighting": weighting },
            "config": c,
            "exposures": if one_industry.is_some() { "size only: the panel has no industry data" } else { "industry weights and size" },
            "from": day_dates[0],
            "to": day_dates[day_dates.len() - 1],
            "rebalances": r.signal_dates.len(),
            "uncapped_rebalances": r.uncapped.iter().map(|&t| dates[t].clone()).collect::<Vec<_>>(),
            "skipped_rebalances": r.skipped.iter().map(|&t| dates[t].clone()).collect::<Vec<_>>(),
            "industry_reconciled_rebalances": r.forced.iter().map(|&t| dates[t].clone()).collect::<Vec<_>>(),
            "performance": r.performance,
            "mean_turnover": r.mean_turnover,
            "annual_turnover": r.annual_turnover,
        });
        write_json_atomically(&dir.join("metrics.json"), &metrics)?;
        let mut report = render_report(opts, &name, &weighting, &r, &day_dates);
        if one_industry.is_some() {
            report +=
                "\n**Note.** The panel has no industry data (imported without `--industry`): \
                       the industry constraints reduce to full investment and only the size \
                       exposure of the benchmark is matched.\n";
        }
        write_file_atomically(&dir.join("report.md"), report.as_bytes())
    })?;
    print!("{}", performance_table(&opts.factor.name, &r));
    println!("report: {}", opts.out.join("report.md").display());
    Ok(r)
}

/// The report's performance table (one row).
pub fn performance_table(name: &str, r: &EnhanceResult) -> String {
    let p = &r.performance;
    format!(
        "| portfolio | annual return | volatility | Sharpe | max drawdown | excess return | tracking error | excess max DD | IR | Calmar | monthly win | turnover / rebalance | annual turnover |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
         | {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}× |\n",
        pct(p.annual_return),
        pct(p.volatility),
        num(p.sharpe),
        pct(p.max_drawdown),
        pct(p.excess_return),
        pct(p.tracking_error),
        pct(p.excess_max_drawdown),
        num(p.information_ratio),
        num(p.calmar),
        pct(p.monthly_win_rate),
        pct(r.mean_turnover),
        num(r.annual_turnover)
    )
}

fn render_report(
    opts: &EnhanceOptions,
    bench: &str,
    weighting: &str,
    r: &EnhanceResult,
    day_dates: &[String],
) -> String {
    let c = &opts.config;
    let mut s = String::from("# Index enhancement\n\n");
    s += &format!(
        "Factor `{}` ({}) against benchmark `{bench}` (weights: {weighting}), {} .. {}, {} weekly \
         rebalances. Each week's last trading date t: maximize the factor's z-scored alpha over \
         long-only, fully invested weights with industry and size (log market cap) exposures equal \
         to the benchmark's, |w − b| ≤ {} per stock, two-way turnover ≤ {} per rebalance (the \
         first build from cash excepted); traded at t+1's VWAP, {:.2}% cost per side. Solver: \
         Clarabel (interior point), every solution checked against the constraints.\n\n",
        opts.factor.name,
        opts.factor.path.display(),
        day_dates[0],
        day_dates[day_dates.len() - 1],
        r.signal_dates.len(),
        pct(c.max_deviation),
        pct(c.max_turnover),
        100.0 * c.cost
    );
    s += &performance_table(&opts.factor.name, r);
    s += &format!(
        "\nBenchmark annual return {}. Calmar = annualized excess return / excess max drawdown; IR = \
         mean/std·√242 of daily excess returns; tracking error = std·√242 of daily excess returns; \
         annual turnover = two-way turnover per 242 days.\n\n",
        pct(r.performance.benchmark_annual_return)
    );
    if !r.uncapped.is_empty() {
        s += &format!(
            "The turnover cap made {} of {} rebalances infeasible; they were solved without it.\n\n",
            r.uncapped.len(),
            r.signal_dates.len()
        );
    }
    if !r.forced.is_empty() {
        s += &format!(
            "On {} of {} rebalances, untradable (suspended or limit-locked) stocks made an \
             industry's benchmark weight unreachable; its target was clamped to what the tradable \
             stocks' bounds allow and the difference spread over the other industries.\n\n",
            r.forced.len(),
            r.signal_dates.len()
        );
    }
    if !r.skipped.is_empty() {
        s += &format!(
            "{} of {} rebalances were infeasible even without the turnover cap and kept the drifted \
             book: {}.\n\n",
            r.skipped.len(),
            r.signal_dates.len(),
            r.skipped
                .iter()
                .map(|&t| day_dates[t - r.days[0]].clone())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s += "## Per-year returns\n\n| year | portfolio | benchmark | excess |\n|---|---|---|---|\n";
    for y in &r.performance.per_year {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            y.year,
            pct(y.portfolio),
            pct(y.benchmark),
            pct(y.excess)
        );
    }
    s += "\n![NAV](nav.png)\n\nFiles: `metrics.json`, `nav.png`.\n";
    s
}
