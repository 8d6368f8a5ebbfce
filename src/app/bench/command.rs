//! The `alphanet bench` command: its arguments, what they turn into ([`BenchOptions`]), and
//! printing the report as a table or JSON.

use super::measure::{run, BenchOptions};
use super::report::render;
use crate::app::args::init_threads;
use crate::{Error, Result};

/// The arguments of `alphanet bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchCommand {
    /// Variant(s), as for --variant: v2, v2.1, v2.2, v2.3, v1, v3 (comma list combines).
    #[arg(long, default_value = "v2")]
    pub model: String,
    /// Batch sizes, comma separated.
    #[arg(long, default_value = "1000,4096,16384")]
    pub batch: String,
    /// Feature ops as for training, or `all`, or `peer6` (the TensorFlow peer's six).
    #[arg(long, default_value = "all")]
    pub ops: String,
    /// cpu, auto or cuda[:K] (the default measures the CPU, so figures name their device).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Timed steps per figure (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps before timing.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also time training end to end (`alphanet train`'s loop: batch gathering, steps and
    /// validation) on a synthetic market, for each batch size, beside the step.
    #[arg(long)]
    pub end_to_end: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchCommand {
    pub fn options(&self) -> Result<BenchOptions> {
        Ok(BenchOptions {
            model: self.model.clone(),
            ops: self.ops.clone(),
            batches: parse_batches(&self.batch)?,
            device: self.device.parse()?,
            steps: self.steps,
            warmup: self.warmup,
            seed: self.seed,
            end_to_end: self.end_to_end,
        })
    }

    /// Measures and prints the table (or JSON).
    pub fn run(self) -> Result<()> {
        init_threads(self.threads)?;
        let report = run(&self.options()?)?;
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report)
                    .map_err(|e| Error::Config(format!("bench: {e}")))?
            );
        } else {
            print!("{}", render(&report));
        }
        Ok(())
    }
}

/// Parses `--batch 1000,4096,16384`.
pub fn parse_batches(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    Error::Config(format!(
                    "--batch {s}: expected positive integers separated by commas, e.g. 1000,4096"
                ))
                })
        })
        .collect()
}
