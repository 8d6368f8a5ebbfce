//! The training loop: shuffled date batches, validation each epoch (loss and RankIC), early
//! stopping on the chosen validation metric with the best weights restored, and a progress bar
//! with epoch, losses, validation RankIC and samples/s.

use super::batches::{plan_epoch, plan_in_order, DateChunk};
pub use super::progress::EpochLog;
use super::step::{eval_predict_on, queue_train_step, Batch, Queued};
use crate::autograd::adam::AdamConfig;
use crate::cuda::Backend;
use crate::data::panel::Panel;
use crate::data::pictures::Pictures;
use crate::data::samples::{average_ranks, gather_styles, spearman, SampleIndex};
use crate::device::{Cpu, Device, DeviceBatch};
use crate::model::{LossConfig, Model, ModelConfig};
use crate::ops::loss::long_side_weights;
use crate::util::rng::stream;
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::ops::Range;
use std::time::Instant;

/// The validation metric that early stopping and the choice of the best epoch use
/// (docs/training.md#model-selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectBy {
    /// Highest mean over validation dates of the Spearman correlation of prediction and label.
    RankIc,
    /// Lowest validation loss (the report's formulation).
    Mse,
}

impl SelectBy {
    /// The CLI default (`--select-by`), chosen by measurement (docs/training.md#model-selection).
    pub const DEFAULT: SelectBy = SelectBy::RankIc;

    /// What files written before the option existed were selected by.
    pub fn legacy() -> SelectBy {
        SelectBy::Mse
    }

    pub fn name(self) -> &'static str {
        match self {
            SelectBy::RankIc => "rankic",
            SelectBy::Mse => "mse",
        }
    }
}

impl Default for SelectBy {
    fn default() -> Self {
        SelectBy::DEFAULT
    }
}

impl std::str::FromStr for SelectBy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rankic" => Ok(SelectBy::RankIc),
            "mse" => Ok(SelectBy::Mse),
            _ => Err(Error::Config(format!(
                "--select-by {s:?}: expected rankic (validation RankIC) or mse (validation loss)"
            ))),
        }
    }
}

/// How a date's raw labels become training targets (docs/training.md#labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelNorm {
    /// `(r − mean) / std` over the date's universe.
    Zscore,
    /// qlib's `CSRankNorm`: `(rank_pct − ½)·√12`, the date's percentile ranks (ties averaged)
    /// centred and scaled to unit variance, so a few extreme returns cannot dominate the loss.
    Rank,
}

impl LabelNorm {
    /// The CLI default (`--label`), chosen by measurement (docs/training.md#labels).
    pub const DEFAULT: LabelNorm = LabelNorm::Zscore;

    /// What files written before the option existed trained on.
    pub fn legacy() -> LabelNorm {
        LabelNorm::Zscore
    }

    pub const fn name(self) -> &'static str {
        match self {
            LabelNorm::Zscore => "zscore",
            LabelNorm::Rank => "rank",
        }
    }

    /// The training targets of one date from its z-scored labels (ranks are the same).
    pub fn apply(self, z: &[f32]) -> Vec<f32> {
        match self {
            LabelNorm::Zscore => z.to_vec(),
            LabelNorm::Rank => {
                let n = z.len() as f64;
                let z: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
                average_ranks(&z)
                    .into_iter()
                    .map(|r| (((r - 0.5) / n - 0.5) * 12f64.sqrt()) as f32)
                    .collect()
            }
        }
    }
}

impl std::str::FromStr for LabelNorm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zscore" => Ok(LabelNorm::Zscore),
            "rank" => Ok(LabelNorm::Rank),
            _ => Err(Error::Config(format!(
                "--label {s:?}: expected rank (cross-sectional percentile ranks, qlib's CSRankNorm) or zscore"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub patience: usize,
    pub batch_size: usize,
    pub adam: AdamConfig,
    pub seed: u64,
    /// Early stopping and the best epoch follow this validation metric. Files written before
    /// the option existed were selected by the loss, and read back that way.
    #[serde(default = "SelectBy::legacy")]
    pub select_by: SelectBy,
    /// The training targets. Files written before the option existed trained on z-scores.
    #[serde(default = "LabelNorm::legacy")]
    pub label: LabelNorm,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 100,
            patience: 10,
            batch_size: 1000,
            adam: AdamConfig::default(),
            seed: 0,
            select_by: SelectBy::DEFAULT,
            label: LabelNorm::DEFAULT,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochLog>,
    pub best_epoch: usize,
    /// Validation loss of the best epoch.
    pub best_val_loss: f64,
    /// Validation RankIC of the best epoch.
    #[serde(default)]
    pub best_val_rank_ic: Option<f64>,
    /// The metric that chose the best epoch.
    #[serde(default = "SelectBy::legacy")]
    pub select_by: SelectBy,
    pub train_samples: usize,
    pub val_samples: usize,
    /// Date groups that were too small for the v2.2 regression and used plain MSE.
    pub fallback_groups: usize,
}

/// Samples of one part (train or validation) with the per-date targets and v2.3 weights
/// precomputed.
struct Part<'a> {
    index: &'a SampleIndex,
    labels: Vec<Vec<f32>>,
    weights: Vec<Vec<f32>>,
}

impl<'a> Part<'a> {
    fn new(index: &'a SampleIndex, loss: &LossConfig, label: LabelNorm) -> Self {
        let high = loss.long_weight.unwrap_or(1.0) as f32;
        let labels: Vec<Vec<f32>> = index.labels_z.iter().map(|z| label.apply(z)).collect();
        let weights = labels.iter().map(|y| long_side_weights(y, high)).collect();
        Part {
            index,
            labels,
            weights,
        }
    }

    fn samples(&self) -> usize {
        self.index.per_date.iter().map(Vec::len).sum()
    }

    /// Gathers the pictures (on the device), labels, weights and styles of the given chunks; the
    /// batch, and its labels on the host.
    fn batch<D: Device<T = f32> + Pictures>(
        &self,
        dev: &D,
        src: &D::Source,
        panel: &Panel,
        chunks: &[DateChunk],
    ) -> Result<(DeviceBatch<D>, Vec<f32>)> {
        let mut pairs = Vec::new();
        let (mut y, mut w, mut offsets) = (Vec::new(), Vec::new(), vec![0]);
        for c in chunks {
            let date = self.index.dates[c.date];
            for &r in &c.rows {
                pairs.push((date, self.index.per_date[c.date][r]));
                y.push(self.labels[c.date][r]);
                w.push(self.weights[c.date][r]);
            }
            offsets.push(pairs.len());
        }
        let k = panel.n_styles();
        let mut styles = vec![0.0; pairs.len() * k];
        gather_styles(panel.view(), &pairs, &mut styles);
        let host = Batch {
            x: vec![],
            y,
            w,
            styles,
            k,
            offsets,
        };
        let batch = dev.batch(&host, dev.gather_pictures(src, panel, &pairs)?)?;
        Ok((batch, host.y))
    }

    /// The panel dates this part's pictures are cut from.
    fn span(&self) -> Option<Range<usize>> {
        let (first, last) = (self.index.dates.first()?, self.index.dates.last()?);
        Some(*first as usize..*last as usize + 1)
    }
}

/// Trains a fresh model on `train` with early stopping on `val` on the chosen device; returns
/// the best model (on the host) and the report.
#[allow(clippy::too_many_arguments)]
pub fn train(
    backend: &Backend,
    panel: &Panel,
    model_cfg: &ModelConfig,
    loss: &LossConfig,
    cfg: &TrainConfig,
    train: &SampleIndex,
    val: &SampleIndex,
    progress: bool,
) -> Result<(Model<f32>, TrainReport)> {
    match backend {
        Backend::Cpu => train_on(
            &Cpu::new(),
            panel,
            model_cfg,
            loss,
            cfg,
            train,
            val,
            progress,
        ),
        Backend::Cuda(gpu) => train_on(&**gpu, panel, model_cfg, loss, cfg, train, val, progress),
    }
}

/// [`train`] on device `dev`: the panel's pictures for the window uploaded once, batches
/// gathered there, validation and the best epoch's copy kept there.
#[allow(clippy::too_many_arguments)]
pub fn train_on<D: Device<T = f32> + Pictures>(
    dev: &D,
    panel: &Panel,
    model_cfg: &ModelConfig,
    loss: &LossConfig,
    cfg: &TrainConfig,
    train: &SampleIndex,
    val: &SampleIndex,
    progress: bool,
) -> Result<(Model<f32>, TrainReport)> {
    if panel.meta().feature_names.len() != model_cfg.n_features {
        return Err(Error::Config(format!(
            "the panel has {} features but the model expects {}",
            panel.meta().feature_names.len(),
            model_cfg.n_features
        )));
    }
    if loss.neutralize && panel.n_styles() == 0 {
        return Err(Error::Config(
            "--neutralize-loss needs style exposures, but the panel has none (styles.npy has K = 0)".into(),
        ));
    }
    let mut model = Model::<f32>::new(model_cfg)?.to_device(dev)?;
    let (train_part, val_part) = (
        Part::new(train, loss, cfg.label),
        Part::new(val, loss, cfg.label),
    );
    let span = match (train_part.span(), val_part.span()) {
        (Some(a), Some(b)) => a.start.min(b.start)..a.end.max(b.end),
        (a, b) => a.or(b).unwrap_or(0..0),
    };
    let src = dev.source(panel, span)?;
    let sizes: Vec<usize> = train.per_date.iter().map(Vec::len).collect();
    // Validation batches are gathered again each epoch: holding them would copy the pictures of
    // the whole validation span into RAM, which can be larger than the mapped panel itself.
    let val_sizes: Vec<usize> = val.per_date.iter().map(Vec::len).collect();
    let val_plan = plan_in_order(&val_sizes, cfg.batch_size);
    let n_train = train_part.samples();
    let bar = progress_bar(progress, cfg.epochs as u64);
    // Where the bar cannot draw (a pipe, a log file), one line per epoch instead.
    let lines = progress && !std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut report = TrainReport {
        epochs: vec![],
        best_epoch: 0,
        best_val_loss: f64::INFINITY,
        best_val_rank_ic: None,
        select_by: cfg.select_by,
        train_samples: n_train,
        val_samples: val_part.samples(),
        fallback_groups: 0,
    };
    let mut best = model.duplicate(dev)?;
    // Higher is better for both metrics (the loss enters negated); NaN never improves.
    let mut best_score = f64::NEG_INFINITY;
    let mut fallback_said = false;
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let mut rng = stream(cfg.seed, &format!("epoch-{epoch}"));
        let plan = plan_epoch(&sizes, cfg.batch_size, &mut rng);
        let (mut sum, mut count) = (0.0, 0usize);
        // A step's loss is read once the next step is queued: on a GPU the host gathers the
        // next batch while the device computes, instead of waiting for each step in turn.
        let mut account = |step: usize, queued: Queued<D>, n: usize| -> Result<()> {
            let (l, fallback) = queued.read(dev)?;
            if !l.is_finite() {
                return Err(Error::Data(format!(
                    "training diverged at epoch {} step {step} (loss {l}); try a smaller --lr",
                    epoch + 1
                )));
            }
            if fallback > 0 && !fallback_said {
                bar.println(format!(
                    "note: {fallback} date group(s) had fewer than 2(K+1) samples; v2.2 used plain MSE for them"
                ));
                fallback_said = true;
            }
            report.fallback_groups += fallback;
            sum += l * n as f64;
            count += n;
            Ok(())
        };
        let mut in_flight = None;
        for (step, chunks) in plan.iter().enumerate() {
            let (batch, _) = train_part.batch(dev, &src, panel, chunks)?;
            let dropout_seed = cfg.seed ^ ((epoch as u64) << 32) ^ step as u64;
            let queued = queue_train_step(dev, &mut model, &batch, loss, &cfg.adam, dropout_seed)?;
            if let Some((s, q, n)) = in_flight.replace((step, queued, batch.n)) {
                account(s, q, n)?;
            }
        }
        if let Some((s, q, n)) = in_flight {
            account(s, q, n)?;
        }
        let (mut losses, mut ics) = (Vec::new(), Vec::new());
        for chunks in &val_plan {
            let (b, y) = val_part.batch(dev, &src, panel, chunks)?;
            let (l, pred) = eval_predict_on(dev, &mut model, &b, loss)?;
            losses.push((l, b.n));
            // Validation chunks are whole dates (plan_in_order): one RankIC per date.
            for g in b.offsets.windows(2) {
                let ic = spearman(&pred[g[0]..g[1]], &y[g[0]..g[1]]);
                if ic.is_finite() {
                    ics.push(ic);
                }
            }
        }
        let val_loss = weighted_mean(losses.into_iter());
        let val_rank_ic = (!ics.is_empty()).then(|| ics.iter().sum::<f64>() / ics.len() as f64);
        let log = EpochLog {
            epoch: epoch + 1,
            train_loss: sum / count.max(1) as f64,
            val_loss,
            val_rank_ic,
            samples_per_s: n_train as f64 / t0.elapsed().as_secs_f64(),
        };
        bar.set_message(format!(
            "loss {:.4}  val {:.4}  val RankIC {}  {:.0} samples/s",
            log.train_loss,
            log.val_loss,
            fmt_ic(log.val_rank_ic),
            log.samples_per_s
        ));
        bar.inc(1);
        if lines {
            let left = started.elapsed().as_secs_f64() / (epoch + 1) as f64
                * (cfg.epochs - epoch - 1) as f64;
            eprintln!(
                "epoch {}/{}: loss {:.4}, val loss {:.4}, val RankIC {}, {:.0} samples/s, \
                 at most {} left",
                epoch + 1,
                cfg.epochs,
                log.train_loss,
                log.val_loss,
                fmt_ic(log.val_rank_ic),
                log.samples_per_s,
                indicatif::HumanDuration(std::time::Duration::from_secs_f64(left))
            );
        }
        super::progress::epoch_done(&log, cfg.epochs);
        report.epochs.push(log);
        let score = match cfg.select_by {
            SelectBy::Mse => -val_loss,
            SelectBy::RankIc => val_rank_ic.unwrap_or(f64::NAN),
        };
        if score > best_score {
            best_score = score;
            report.best_val_loss = val_loss;
            report.best_val_rank_ic = val_rank_ic;
            report.best_epoch = epoch + 1;
            best = model.duplicate(dev)?;
        } else if epoch + 1 - report.best_epoch >= cfg.patience {
            bar.println(format!(
                "early stop at epoch {}: best validation {} at epoch {}",
                epoch + 1,
                match cfg.select_by {
                    SelectBy::Mse => "loss",
                    SelectBy::RankIc => "RankIC",
                },
                report.best_epoch
            ));
            break;
        }
    }
    bar.finish_and_clear();
    Ok((best.to_host(dev)?, report))
}

/// A validation RankIC as a percentage, or "n/a" where undefined.
pub fn fmt_ic(ic: Option<f64>) -> String {
    match ic {
        Some(v) => format!("{:.2}%", 100.0 * v),
        None => "n/a".into(),
    }
}

fn weighted_mean(items: impl Iterator<Item = (f64, usize)>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for (v, k) in items {
        s += v * k as f64;
        n += k;
    }
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("epoch {pos}/{len} [{bar:30}] {elapsed_precise} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}
