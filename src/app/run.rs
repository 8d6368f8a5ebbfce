//! `alphanet run`: the rolling protocol (docs/protocol.md) as one command: the flags, turned into
//! the run's settings (`rolling::record::RunSpec`) and handed to `rolling::driver::run`.

use super::args::{init_threads, parse_ratio, DeviceArg, NetArgs, TrainArgs};
use crate::rolling::driver::{run, RunOptions};
use crate::rolling::jobs::Shard;
use crate::rolling::record::RunSpec;
use crate::rolling::schedule::{Period, ScheduleConfig};
use crate::Result;
use std::path::PathBuf;

/// The arguments of `alphanet run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunCommand {
    #[arg(long)]
    pub panel: PathBuf,
    /// Run folder: created, or resumed (finished jobs are skipped).
    #[arg(long)]
    pub out: PathBuf,
    /// Variants, comma separated, one factor each; `+` combines (v2.1+v2.3).
    #[arg(long, default_value = "v2,v2.1,v2.2,v2.3")]
    pub variants: String,
    /// Models per window and variant (ensemble size).
    #[arg(long, default_value_t = 10)]
    pub seeds: usize,
    /// First prediction date (the first trading date on or after it).
    #[arg(long)]
    pub start: String,
    /// Last prediction date (the last trading date on or before it; default: the panel's end).
    #[arg(long)]
    pub end: Option<String>,
    /// Retraining period: months (6M), years (1Y) or trading days (120d).
    #[arg(long, default_value = "6M")]
    pub retrain_every: String,
    /// Trading days of in-sample history per window (shrunk, with a note, if the panel is shorter).
    #[arg(long, default_value_t = 1500)]
    pub insample_days: usize,
    /// Use every k-th in-sample date.
    #[arg(long, default_value_t = 2)]
    pub sample_every: usize,
    /// Chronological train:validation split.
    #[arg(long, default_value = "4:1")]
    pub split: String,
    /// Run the i-th (0-based) of N slices of the jobs, e.g. $SLURM_ARRAY_TASK_ID/N.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub net: NetArgs,
    /// --seed is the ensemble's base seed.
    #[command(flatten)]
    pub train: TrainArgs,
}

impl RunCommand {
    pub fn options(self) -> Result<RunOptions> {
        let activation = self.net.activation()?;
        let spec = RunSpec {
            variants: self
                .variants
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect(),
            seeds: self.seeds,
            schedule: ScheduleConfig {
                start: self.start,
                end: self.end,
                every: self.retrain_every.parse::<Period>()?,
                insample_days: self.insample_days,
                split: parse_ratio(&self.split)?,
            },
            sample_every: self.sample_every,
            hidden: self.net.hidden,
            dropout: self.net.dropout,
            ops: self.net.ops,
            input_norm: self.net.input_norm,
            activation,
            train: self.train.config()?,
        };
        Ok(RunOptions {
            panel: self.panel,
            out: self.out,
            spec,
            shard: self.shard.parse::<Shard>()?,
            device: self.device.choice()?,
        })
    }

    pub fn run(self) -> Result<()> {
        init_threads(self.train.threads)?;
        run(&self.options()?)?;
        Ok(())
    }
}
