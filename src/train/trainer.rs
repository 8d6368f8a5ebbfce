//! The training loop: shuffled date batches, validation each epoch, early stopping with the best
//! weights restored, and a progress bar with epoch, losses and samples/s.

use super::batches::{plan_epoch, plan_in_order, DateChunk};
use super::step::{eval_loss, train_step, Batch};
use crate::autograd::adam::AdamConfig;
use crate::data::panel::Panel;
use crate::data::samples::{gather_pictures, gather_styles, SampleIndex, N_FEATURES, PICTURE_DAYS};
use crate::model::{LossConfig, Model, ModelConfig};
use crate::ops::loss::long_side_weights;
use crate::rng::stream;
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub patience: usize,
    pub batch_size: usize,
    pub adam: AdamConfig,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 100,
            patience: 10,
            batch_size: 1000,
            adam: AdamConfig::default(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub samples_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    pub train_samples: usize,
    pub val_samples: usize,
    /// Date groups that were too small for the v2.2 regression and used plain MSE.
    pub fallback_groups: usize,
}

/// Samples of one part (train or validation) with the per-date v2.3 weights precomputed.
struct Part<'a> {
    index: &'a SampleIndex,
    weights: Vec<Vec<f32>>,
}

impl<'a> Part<'a> {
    fn new(index: &'a SampleIndex, loss: &LossConfig) -> Self {
        let high = loss.long_weight.unwrap_or(1.0) as f32;
        let weights = index
            .labels_z
            .iter()
            .map(|y| long_side_weights(y, high))
            .collect();
        Part { index, weights }
    }

    fn samples(&self) -> usize {
        self.index.per_date.iter().map(Vec::len).sum()
    }

    /// Gathers pictures, labels, weights and styles of the given chunks from the mapped panel.
    fn batch(&self, panel: &Panel, chunks: &[DateChunk]) -> Batch<f32> {
        let mut pairs = Vec::new();
        let (mut y, mut w, mut offsets) = (Vec::new(), Vec::new(), vec![0]);
        for c in chunks {
            let date = self.index.dates[c.date];
            for &r in &c.rows {
                pairs.push((date, self.index.per_date[c.date][r]));
                y.push(self.index.labels_z[c.date][r]);
                w.push(self.weights[c.date][r]);
            }
            offsets.push(pairs.len());
        }
        let k = panel.n_styles();
        let mut x = vec![0.0; pairs.len() * N_FEATURES * PICTURE_DAYS];
        gather_pictures(panel.view(), &pairs, &mut x);
        let mut styles = vec![0.0; pairs.len() * k];
        gather_styles(panel.view(), &pairs, &mut styles);
        Batch {
            x,
            y,
            w,
            styles,
            k,
            offsets,
        }
    }
}

/// Trains a fresh model on `train` with early stopping on `val`; returns the best model.
pub fn train(
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
    let mut model = Model::<f32>::new(model_cfg)?;
    let (train_part, val_part) = (Part::new(train, loss), Part::new(val, loss));
    let sizes: Vec<usize> = train.per_date.iter().map(Vec::len).collect();
    // Validation batches are gathered again each epoch: holding them would copy the pictures of
    // the whole validation span into RAM, which can be larger than the mapped panel itself.
    let val_sizes: Vec<usize> = val.per_date.iter().map(Vec::len).collect();
    let val_plan = plan_in_order(&val_sizes, cfg.batch_size);
    let n_train = train_part.samples();
    let bar = progress_bar(progress, cfg.epochs as u64);
    let mut report = TrainReport {
        epochs: vec![],
        best_epoch: 0,
        best_val_loss: f64::INFINITY,
        train_samples: n_train,
        val_samples: val_part.samples(),
        fallback_groups: 0,
    };
    let mut best = model.clone();
    let mut fallback_said = false;
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let mut rng = stream(cfg.seed, &format!("epoch-{epoch}"));
        let plan = plan_epoch(&sizes, cfg.batch_size, &mut rng);
        let (mut sum, mut count) = (0.0, 0usize);
        for (step, chunks) in plan.iter().enumerate() {
            let batch = train_part.batch(panel, chunks);
            let dropout_seed = cfg.seed ^ ((epoch as u64) << 32) ^ step as u64;
            let (l, fallback) = train_step(&mut model, &batch, loss, &cfg.adam, dropout_seed);
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
            sum += l * batch.len() as f64;
            count += batch.len();
        }
        let val_loss = weighted_mean(val_plan.iter().map(|chunks| {
            let b = val_part.batch(panel, chunks);
            (eval_loss(&mut model, &b, loss), b.len())
        }));
        let log = EpochLog {
            epoch: epoch + 1,
            train_loss: sum / count.max(1) as f64,
            val_loss,
            samples_per_s: n_train as f64 / t0.elapsed().as_secs_f64(),
        };
        bar.set_message(format!(
            "loss {:.4}  val {:.4}  {:.0} samples/s",
            log.train_loss, log.val_loss, log.samples_per_s
        ));
        bar.inc(1);
        report.epochs.push(log);
        if val_loss < report.best_val_loss {
            report.best_val_loss = val_loss;
            report.best_epoch = epoch + 1;
            best = model.clone();
        } else if epoch + 1 - report.best_epoch >= cfg.patience {
            bar.println(format!(
                "early stop at epoch {}: best validation loss at epoch {}",
                epoch + 1,
                report.best_epoch
            ));
            break;
        }
    }
    bar.finish_and_clear();
    Ok((best, report))
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
