//! `alphanet predict`: the factor of a checkpoint over a date range, as factor.npy and factor.csv.

use super::args::{init_threads, DeviceArg};
use super::held_out::held_out;
use crate::cuda::Backend;
use crate::data::panel::Panel;
use crate::data::samples::PICTURE_DAYS;
use crate::train::checkpoint;
use crate::train::fit::{date_range, warn_empty_dates};
use crate::train::predict::{predict_factor, write_factor, Output};
use crate::util::fs::check_output_creatable;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The arguments of `alphanet predict`.
#[derive(Debug, Clone, clap::Args)]
pub struct PredictCommand {
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long)]
    pub panel: PathBuf,
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: String,
    /// Output folder to create.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also print the factor's daily RankIC against the labels (training universe).
    #[arg(long)]
    pub eval: bool,
    /// For a model trained with the neutralized loss (v2.2): write ŷ as the network outputs it
    /// instead of its residual on the styles (the default, docs/models.md).
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl PredictCommand {
    pub fn run(self) -> Result<()> {
        init_threads(self.threads)?;
        predict(&self)
    }
}

/// Writes the factor of a checkpoint over `--from ..= --to`; with `--eval`, also prints its daily
/// RankIC against the labels on the training universe (docs/data.md).
pub fn predict(cmd: &PredictCommand) -> Result<()> {
    let (checkpoint_dir, panel_dir, out) = (&cmd.checkpoint, &cmd.panel, &cmd.out);
    let (from, to, eval, raw) = (cmd.from.as_str(), cmd.to.as_str(), cmd.eval, cmd.raw);
    let device = cmd.device.choice()?;
    check_output_creatable(out)?;
    let (model, cfg) = checkpoint::load(checkpoint_dir)?;
    let panel = Panel::open(panel_dir)?;
    let dates = prediction_dates(&panel, &cfg.feature_names, checkpoint_dir, from, to)?;
    let backend = Backend::open(device)?;
    let output = if raw {
        Output::Raw
    } else {
        Output::of(&cfg.loss)
    };
    let factor = if eval {
        let ho = held_out(&backend, &panel, &model, dates.clone(), 1, 4096, output)?;
        println!(
            "RankIC {from} .. {to}: mean {:.4}, std {:.4}, IR {:.2}, positive {:.1}% over {} dates",
            ho.ic.mean,
            ho.ic.std,
            ho.ic.ir,
            100.0 * ho.ic.positive,
            ho.ic.dates
        );
        ho.factor
    } else {
        predict_factor(&backend, &panel, &model, dates.clone(), 4096, output)?
    };
    crate::util::fs::write_dir_atomically(out, |tmp| {
        write_factor(tmp, &panel, &factor, dates.clone())
    })?;
    let n = factor.iter().filter(|v| v.is_finite()).count();
    println!(
        "wrote {} ({n} factor values over {} dates)",
        out.display(),
        dates.len()
    );
    Ok(())
}

/// The dates `from..=to` a model trained on `trained_features` predicts on `panel`, after
/// checking that the panel has the same features, with a warning about dates without features
/// (`checkpoint` names the model in errors). Shared by `predict` and the Python package.
pub fn prediction_dates(
    panel: &Panel,
    trained_features: &[String],
    checkpoint: &Path,
    from: &str,
    to: &str,
) -> Result<std::ops::Range<usize>> {
    if panel.meta().feature_names != trained_features {
        return Err(Error::Checkpoint {
            path: checkpoint.into(),
            msg: format!(
                "trained on features {:?} but the panel has {:?}: use a panel with the same feature set",
                trained_features,
                panel.meta().feature_names
            ),
        });
    }
    let dates = date_range(panel, Some(from), Some(to), 0..0)?;
    warn_empty_dates(
        panel,
        dates.start.saturating_sub(PICTURE_DAYS - 1)..dates.end,
    );
    Ok(dates)
}
