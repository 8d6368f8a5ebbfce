//! `alphanet train`: trains one model on a panel's in-sample dates and saves a checkpoint.

use super::args::{init_threads, parse_ratio, FitArgs};
use crate::cuda::{Backend, DeviceChoice};
use crate::data::panel::Panel;
use crate::data::samples::{HORIZON, PICTURE_DAYS};
use crate::model::{LossConfig, ModelConfig};
use crate::train::checkpoint;
use crate::train::fit::{date_range, fit, warn_empty_dates, Fitted};
use crate::train::trainer::{fmt_ic, TrainConfig};
use crate::util::fs::check_output_creatable;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The arguments of `alphanet train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainCommand {
    #[arg(long)]
    pub panel: PathBuf,
    /// Checkpoint folder to create.
    #[arg(long)]
    pub out: PathBuf,
    /// First in-sample date (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Last in-sample date.
    #[arg(long)]
    pub to: Option<String>,
    /// Use every k-th date of the in-sample window.
    #[arg(long, default_value_t = 1)]
    pub sample_every: usize,
    /// Chronological train:validation split.
    #[arg(long, default_value = "4:1")]
    pub split: String,
    #[command(flatten)]
    pub fit: FitArgs,
}

impl TrainCommand {
    pub fn run(self) -> Result<()> {
        init_threads(self.fit.train.threads)?;
        let (m, l) = self.fit.model.configs(self.fit.train.seed)?;
        let ratio = parse_ratio(&self.split)?;
        train(
            self.fit.device.choice()?,
            &self.panel,
            &self.out,
            &m,
            &l,
            &self.fit.train.config()?,
            (self.from.as_deref(), self.to.as_deref()),
            self.sample_every,
            ratio,
        )
    }
}

#[allow(clippy::too_many_arguments)]
pub fn train(
    device: DeviceChoice,
    panel_dir: &Path,
    out: &Path,
    model: &ModelConfig,
    loss: &LossConfig,
    cfg: &TrainConfig,
    range: (Option<&str>, Option<&str>),
    every: usize,
    ratio: (usize, usize),
) -> Result<()> {
    check_sample_every(every)?;
    check_output_creatable(out)?;
    let panel = Panel::open(panel_dir)?;
    let fitted = fit_insample(device, &panel, model, loss, cfg, range, every, ratio, true)?;
    checkpoint::save(
        out,
        &fitted.model,
        loss,
        &panel.meta().feature_names,
        Some(&fitted.report),
    )?;
    println!(
        "saved {} (best epoch {} by validation {}: loss {:.4}, RankIC {})",
        out.display(),
        fitted.report.best_epoch,
        fitted.report.select_by.name(),
        fitted.report.best_val_loss,
        fmt_ic(fitted.report.best_val_rank_ic)
    );
    Ok(())
}

fn check_sample_every(every: usize) -> Result<()> {
    if every == 0 {
        return Err(Error::Config(
            "--sample-every 0: must be at least 1 (1 uses every in-sample date)".into(),
        ));
    }
    Ok(())
}

/// What `train` does between opening the panel and saving the checkpoint: resolves the
/// in-sample `--from`/`--to` dates (default: every date with a full picture and a label), warns
/// about dates without features, opens the device, and fits (the Python package calls this too).
#[allow(clippy::too_many_arguments)]
pub fn fit_insample(
    device: DeviceChoice,
    panel: &Panel,
    model: &ModelConfig,
    loss: &LossConfig,
    cfg: &TrainConfig,
    range: (Option<&str>, Option<&str>),
    every: usize,
    ratio: (usize, usize),
    progress: bool,
) -> Result<Fitted> {
    check_sample_every(every)?;
    let default = PICTURE_DAYS - 1..panel.n_dates().saturating_sub(HORIZON);
    let insample = date_range(panel, range.0, range.1, default.clone())?;
    let dates = &panel.meta().dates;
    if insample.start < default.start {
        return Err(Error::Config(format!(
            "--from {}: before the panel's first full 30-day picture ({}), so no sample can start \
             there; choose --from on or after {}",
            dates[insample.start], dates[default.start], dates[default.start]
        )));
    }
    if insample.end > default.end {
        let last = default
            .end
            .checked_sub(1)
            .map_or("none", |k| dates[k].as_str());
        eprintln!(
            "warning: --to {}: the panel's last {HORIZON} dates have no {HORIZON}-day label yet, so \
             {} of the in-sample dates give no sample; the last date with a label is {last}",
            dates[insample.end - 1],
            insample.end - default.end.max(insample.start)
        );
    }
    warn_empty_dates(
        panel,
        insample.start.saturating_sub(PICTURE_DAYS - 1)..insample.end,
    );
    let backend = Backend::open(device)?;
    fit(
        &backend, panel, model, loss, cfg, insample, every, ratio, progress,
    )
}
