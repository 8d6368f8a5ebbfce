//! Fitting one window: in-sample sample index, the purged 4:1 split, training. Shared by `train`,
//! `demo` and the rolling protocol; with the date-range helpers that `train`, `predict` and `run`
//! share.

use crate::cuda::Backend;
use crate::data::panel::Panel;
use crate::data::samples::SampleIndex;
use crate::data::samples::PICTURE_DAYS;
use crate::model::{training_memory_estimate, LossConfig, Model, ModelConfig};
use crate::train::split::split_train_val;
use crate::train::trainer::{train, TrainConfig, TrainReport};
use crate::{Error, Result};
use std::ops::Range;

pub struct Fitted {
    pub model: Model<f32>,
    pub report: TrainReport,
    pub train_dates: Range<usize>,
    pub val_dates: Range<usize>,
}

const GIB: f64 = (1u64 << 30) as f64;

/// Trains on the sample dates `insample` (every `every`-th date), split `ratio` with the purge gap.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    backend: &Backend,
    panel: &Panel,
    model: &ModelConfig,
    loss: &LossConfig,
    cfg: &TrainConfig,
    insample: Range<usize>,
    every: usize,
    ratio: (usize, usize),
    progress: bool,
) -> Result<Fitted> {
    if let (Backend::Cpu, Some(available)) = (backend, crate::util::system::available_bytes()) {
        let need = training_memory_estimate(model, cfg.batch_size);
        if need > available as f64 {
            return Err(Error::Config(format!(
                "training this model takes about {:.1} GiB at batch {} (--hidden {}), more than \
                 the {:.1} GiB this machine has available: choose a smaller --hidden or --batch",
                need / GIB,
                cfg.batch_size,
                model.hidden,
                available as f64 / GIB
            )));
        }
    }
    let (train_dates, val_dates) = split_train_val(insample.start, insample.end, ratio.0, ratio.1)?;
    let train_index = SampleIndex::build(panel.view(), train_dates.clone(), every)?;
    let val_index = SampleIndex::build(panel.view(), val_dates.clone(), every)?;
    if progress {
        eprintln!(
            "train {} .. {} ({} samples, {} non-finite pictures dropped), validation {} .. {} ({} samples)",
            panel.meta().dates[train_dates.start],
            panel.meta().dates[train_dates.end - 1],
            train_index.per_date.iter().map(Vec::len).sum::<usize>(),
            train_index.dropped_nonfinite,
            panel.meta().dates[val_dates.start],
            panel.meta().dates[val_dates.end - 1],
            val_index.per_date.iter().map(Vec::len).sum::<usize>(),
        );
    }
    let (model, report) = train(
        backend,
        panel,
        model,
        loss,
        cfg,
        &train_index,
        &val_index,
        progress,
    )?;
    Ok(Fitted {
        model,
        report,
        train_dates,
        val_dates,
    })
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
