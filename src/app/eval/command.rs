//! The `alphanet eval` command: its arguments, and [`run`], which checks the names, evaluates
//! each factor and then each baseline on the first factor's dates and stocks, writes the output
//! folder atomically and prints the headline table.

use std::path::PathBuf;

use super::neutralization::{neutralization_industries, neutralization_view};
use super::options::{EvalOptions, Source};
use super::outputs::{slug, write_outputs};
use super::report::main_table;
use crate::data::panel::Panel;
use crate::eval::baselines::{restrict, Baseline};
use crate::eval::factor::FactorSpec;
use crate::eval::layered::{evaluate, evaluate_on, factor_span, FactorEval, LayerConfig};
use crate::util::fs::write_dir_atomically;
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
