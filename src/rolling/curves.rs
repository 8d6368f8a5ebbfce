//! Learning curves of a rolling run, written by `alphanet merge` (src/app/merge.rs): per variant and epoch, the mean
//! over the run's jobs of the training loss, the validation loss and the validation RankIC, as
//! `learning_curves.json` and two charts. Early stopping ends jobs at different epochs, so the
//! mean at epoch e is over the jobs that ran it (the count is given): a late epoch speaks for the
//! jobs that were still improving, not for all.

use crate::eval::chart::{line_chart, Line};
use crate::rolling::jobs::{job_dir, CHECKPOINT};
use crate::train::checkpoint::CheckpointConfig;
use crate::train::trainer::TrainReport;
use crate::util::fs::write_json_atomically;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// One epoch's means over the jobs that ran it.
#[derive(Debug, Clone, Serialize)]
pub struct EpochMeans {
    pub epoch: usize,
    pub jobs: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    /// Over the jobs whose validation RankIC was defined.
    pub val_rank_ic: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantCurves {
    pub variant: String,
    pub jobs: usize,
    /// The mean of the jobs' best epochs (the one each job kept).
    pub mean_best_epoch: f64,
    pub epochs: Vec<EpochMeans>,
}

/// The curves of one variant's training reports.
pub fn curves(variant: &str, reports: &[TrainReport]) -> VariantCurves {
    let last = reports.iter().map(|r| r.epochs.len()).max().unwrap_or(0);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let epochs = (1..=last)
        .map(|epoch| {
            let logs: Vec<_> = (reports.iter())
                .filter_map(|r| r.epochs.get(epoch - 1))
                .collect();
            let field = |f: fn(&crate::train::trainer::EpochLog) -> Option<f64>| {
                mean(&logs.iter().filter_map(|e| f(e)).collect::<Vec<_>>())
            };
            EpochMeans {
                epoch,
                jobs: logs.len(),
                train_loss: field(|e| Some(e.train_loss)),
                val_loss: field(|e| Some(e.val_loss)),
                val_rank_ic: field(|e| e.val_rank_ic),
            }
        })
        .collect();
    let best: Vec<f64> = reports.iter().map(|r| r.best_epoch as f64).collect();
    VariantCurves {
        variant: variant.to_string(),
        jobs: reports.len(),
        mean_best_epoch: mean(&best),
        epochs,
    }
}

/// Reads the training report of every job of each variant (`ids[v]`: variant v's jobs) and
/// writes `learning_curves.json`, `learning_curves_rankic.png` and `learning_curves_loss.png`
/// into `run_dir`.
pub fn write_learning_curves(run_dir: &Path, variants: &[String], ids: &[&[String]]) -> Result<()> {
    let all = (variants.iter().zip(ids))
        .map(|(v, ids)| {
            let reports = ids
                .iter()
                .map(|id| read_report(run_dir, id))
                .collect::<Result<Vec<_>>>()?;
            Ok(curves(v, &reports))
        })
        .collect::<Result<Vec<_>>>()?;
    write_json_atomically(
        &run_dir.join("learning_curves.json"),
        &serde_json::to_value(&all).expect("curves serialize"),
    )?;
    let last = all.iter().map(|c| c.epochs.len()).max().unwrap_or(0);
    if last == 0 {
        return Ok(());
    }
    let labels: Vec<String> = (1..=last).map(|e| format!("epoch {e}")).collect();
    let padded = |c: &VariantCurves, f: fn(&EpochMeans) -> f64| -> Vec<f64> {
        (0..last)
            .map(|k| c.epochs.get(k).map_or(f64::NAN, f))
            .collect()
    };
    let rankic: Vec<Line> = (all.iter())
        .map(|c| Line {
            name: c.variant.clone(),
            values: padded(c, |e| e.val_rank_ic),
        })
        .collect();
    line_chart(
        &run_dir.join("learning_curves_rankic.png"),
        "Validation RankIC by epoch (mean over the jobs that ran the epoch)",
        "validation RankIC",
        &labels,
        &rankic,
        Some(0.0),
    )?;
    let loss: Vec<Line> = (all.iter())
        .flat_map(|c| {
            [
                Line {
                    name: format!("{} train", c.variant),
                    values: padded(c, |e| e.train_loss),
                },
                Line {
                    name: format!("{} validation", c.variant),
                    values: padded(c, |e| e.val_loss),
                },
            ]
        })
        .collect();
    line_chart(
        &run_dir.join("learning_curves_loss.png"),
        "Training and validation loss by epoch (mean over the jobs that ran the epoch)",
        "loss",
        &labels,
        &loss,
        None,
    )?;
    println!(
        "learning curves: {}",
        run_dir.join("learning_curves.json").display()
    );
    Ok(())
}

fn read_report(run_dir: &Path, id: &str) -> Result<TrainReport> {
    let path = job_dir(run_dir, id).join(CHECKPOINT).join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let cfg: CheckpointConfig = serde_json::from_str(&text)
        .map_err(|e| Error::Data(format!("{}: not a checkpoint config: {e}", path.display())))?;
    cfg.train.ok_or_else(|| {
        Error::Data(format!(
            "{}: the checkpoint has no training report (it was not written by `run`)",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::trainer::{EpochLog, SelectBy};

    fn report(ics: &[Option<f64>], best: usize) -> TrainReport {
        TrainReport {
            epochs: (ics.iter().enumerate())
                .map(|(k, &ic)| EpochLog {
                    epoch: k + 1,
                    train_loss: 1.0 - 0.1 * k as f64,
                    val_loss: 1.0,
                    val_rank_ic: ic,
                    samples_per_s: 1.0,
                })
                .collect(),
            best_epoch: best,
            best_val_loss: 1.0,
            best_val_rank_ic: None,
            select_by: SelectBy::RankIc,
            train_samples: 1,
            val_samples: 1,
            fallback_groups: 0,
        }
    }

    #[test]
    fn means_are_over_the_jobs_that_ran_each_epoch() {
        let c = curves(
            "v2",
            &[
                report(&[Some(0.1), Some(0.3)], 2),
                report(&[Some(0.3), None, Some(0.5)], 1),
            ],
        );
        assert_eq!(c.jobs, 2);
        assert_eq!(c.mean_best_epoch, 1.5);
        let jobs: Vec<usize> = c.epochs.iter().map(|e| e.jobs).collect();
        assert_eq!(jobs, [2, 2, 1]);
        assert!((c.epochs[0].val_rank_ic - 0.2).abs() < 1e-12);
        // Epoch 2: the undefined RankIC is left out, not counted as 0.
        assert!((c.epochs[1].val_rank_ic - 0.3).abs() < 1e-12);
        assert!((c.epochs[1].train_loss - 0.9).abs() < 1e-12);
        assert!((c.epochs[2].val_rank_ic - 0.5).abs() < 1e-12);
    }
}
