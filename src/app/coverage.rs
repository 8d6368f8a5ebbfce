//! `alphanet coverage`: v2.1 pair coverage by simulation and analytically (the report's Table 5).

use crate::model::coverage;
use crate::{Error, Result};

/// The arguments of `alphanet coverage`.
#[derive(Debug, Clone, clap::Args)]
pub struct CoverageCommand {
    #[arg(long, default_value_t = 15)]
    pub features: usize,
    #[arg(long, default_value_t = 10)]
    pub models: usize,
    /// Range of n, e.g. 6..11 (inclusive).
    #[arg(long, default_value = "6..11")]
    pub n: String,
    #[arg(long, default_value_t = 1000)]
    pub trials: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl CoverageCommand {
    /// Prints the table.
    pub fn run(self) -> Result<()> {
        println!("{:>3}  {:>10}  {:>10}", "n", "simulated", "analytic");
        let ns = parse_n_range(&self.n)?;
        for c in coverage_table(self.features, self.models, ns, self.trials, self.seed)? {
            println!(
                "{:>3}  {:>9.2}%  {:>9.2}%",
                c.n,
                100.0 * c.simulated,
                100.0 * c.analytic
            );
        }
        Ok(())
    }
}

pub fn coverage_table(
    features: usize,
    models: usize,
    ns: std::ops::RangeInclusive<usize>,
    trials: usize,
    seed: u64,
) -> Result<Vec<coverage::Coverage>> {
    if *ns.start() < 2 || *ns.end() > features {
        return Err(Error::Config(format!(
            "--n {}..{}: n must be within 2..={features}",
            ns.start(),
            ns.end()
        )));
    }
    Ok(ns
        .map(|n| coverage::simulate(features, models, n, trials, seed))
        .collect())
}

/// Parses `--n`: `A..B` or `A..=B` (both inclusive) or a single number.
fn parse_n_range(s: &str) -> Result<std::ops::RangeInclusive<usize>> {
    let bad = || {
        Error::Config(format!(
            "--n {s}: expected a range like 6..11 or a single number"
        ))
    };
    match s.split_once("..") {
        Some((a, b)) => Ok(a.trim().parse().map_err(|_| bad())?
            ..=b.trim_start_matches('=')
                .trim()
                .parse()
                .map_err(|_| bad())?),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            Ok(n..=n)
        }
    }
}
