//! `synth`, `train`, `predict` and `coverage`.

use super::fit::{fit, held_out, Fitted};
use crate::coverage;
use crate::cuda::{Backend, DeviceChoice};
use crate::data::panel::Panel;
use crate::data::samples::{HORIZON, PICTURE_DAYS};
use crate::data::synth::{write_synth, SynthConfig};
use crate::fsutil::check_output_creatable;
use crate::model::{LossConfig, ModelConfig};
use crate::train::checkpoint;
use crate::train::predict::{predict_factor, write_factor};
use crate::train::trainer::{fmt_ic, TrainConfig};
use crate::{Error, Result};
use std::path::Path;

pub fn synth(cfg: &SynthConfig, out: &Path) -> Result<()> {
    write_synth(cfg, out)?;
    let panel = Panel::open(out)?;
    let oracle = panel
        .meta()
        .oracle
        .as_ref()
        .map(|o| o.rank_ic_mean)
        .unwrap_or(f64::NAN);
    println!(
        "wrote {}: {} dates × {} stocks, oracle RankIC mean {oracle:.4}",
        out.display(),
        panel.n_dates(),
        panel.n_stocks()
    );
    Ok(())
}

/// Resolves an optional `--from`/`--to` pair of dates into an index range (inclusive `to`).
pub fn date_range(
    panel: &Panel,
    from: Option<&str>,
    to: Option<&str>,
    default: std::ops::Range<usize>,
) -> Result<std::ops::Range<usize>> {
    let start = from
        .map(|d| panel.date_index(d))
        .transpose()?
        .unwrap_or(default.start);
    let end = to
        .map(|d| panel.date_index(d).map(|i| i + 1))
        .transpose()?
        .unwrap_or(default.end);
    if start >= end {
        let dates = &panel.meta().dates;
        let shown = |flag: &str, given: Option<&str>, k: usize| match given {
            Some(d) => format!("{flag} {d}"),
            None => format!("{flag} (default {})", dates[k.min(dates.len() - 1)]),
        };
        return Err(Error::Config(format!(
            "{} is not before {}: give a --from earlier than --to",
            shown("--from", from, start),
            shown("--to", to, end.saturating_sub(1))
        )));
    }
    Ok(start..end)
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
    let insample = date_range(panel, range.0, range.1, default)?;
    warn_empty_dates(
        panel,
        insample.start.saturating_sub(PICTURE_DAYS - 1)..insample.end,
    );
    let backend = Backend::open(device)?;
    fit(
        &backend, panel, model, loss, cfg, insample, every, ratio, progress,
    )
}

/// Writes the factor of a checkpoint over `from..=to`; with `eval`, also prints its daily
/// RankIC against the labels on the training universe (docs/data.md).
pub fn predict(
    device: DeviceChoice,
    checkpoint_dir: &Path,
    panel_dir: &Path,
    from: &str,
    to: &str,
    out: &Path,
    eval: bool,
) -> Result<()> {
    check_output_creatable(out)?;
    let (model, cfg) = checkpoint::load(checkpoint_dir)?;
    let panel = Panel::open(panel_dir)?;
    let dates = prediction_dates(&panel, &cfg.feature_names, checkpoint_dir, from, to)?;
    let backend = Backend::open(device)?;
    let factor = if eval {
        let ho = held_out(&backend, &panel, &model, dates.clone(), 1, 4096)?;
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
        predict_factor(&backend, &panel, &model, dates.clone(), 4096)?
    };
    crate::fsutil::write_dir_atomically(out, |tmp| {
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

/// Prints one warning line when dates of `range` have no stock with a full row of finite
/// features: every 30-day picture that spans such a date is dropped, so the 30 dates from it on
/// get no samples and no predictions.
pub fn warn_empty_dates(panel: &Panel, range: std::ops::Range<usize>) {
    let empty = panel.dates_without_features(range);
    if empty.is_empty() {
        return;
    }
    let dates = &panel.meta().dates;
    let shown: Vec<&str> = empty.iter().take(5).map(|&t| dates[t].as_str()).collect();
    let last = (empty[0] + PICTURE_DAYS - 1).min(dates.len() - 1);
    eprintln!(
        "warning: panel {}: {} date(s) have no finite feature for any stock ({}{}): every picture spanning \
         one is dropped, so e.g. {} .. {} get no samples or predictions; re-import the panel without those dates",
        panel.dir().display(),
        empty.len(),
        shown.join(", "),
        if empty.len() > shown.len() { ", ..." } else { "" },
        dates[empty[0]],
        dates[last]
    );
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
