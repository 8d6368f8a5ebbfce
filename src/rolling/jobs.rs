//! Jobs: each (variant, window, seed index) trains one model and predicts its window. A job has
//! a stable id, belongs to exactly one shard of any `--shard i/N`, and is finished exactly when
//! its directory `jobs/<id>/` holds `job.json`: the directory (checkpoint, predictions, record)
//! is written under a temp name and renamed into place, so a kill at any moment leaves either a
//! finished job or nothing but a temp directory that the next attempt removes.

use super::manifest::CodeVersion;
use crate::data::npy::{write_npy, NpyArray};
use crate::model::{LossConfig, Model};
use crate::train::checkpoint;
use crate::train::trainer::TrainReport;
use crate::util::fs::{remove_stale_temps, write_dir_atomically};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub variant: usize,
    pub window: usize,
    pub seed_index: usize,
}

impl Job {
    /// `<variant>-w<window>-s<seed>`, e.g. `v2.1-w003-s07`.
    pub fn id(&self, variants: &[String]) -> String {
        format!(
            "{}-w{:03}-s{:02}",
            variants[self.variant], self.window, self.seed_index
        )
    }
}

/// Every job of a run in its fixed order: variant, then window, then seed index.
pub fn all_jobs(variants: usize, windows: usize, seeds: usize) -> Vec<Job> {
    (0..variants)
        .flat_map(|variant| {
            (0..windows).flat_map(move |window| {
                (0..seeds).map(move |seed_index| Job {
                    variant,
                    window,
                    seed_index,
                })
            })
        })
        .collect()
}

/// The model and training seed of seed index `k`: a function of the base seed and `k` only, so
/// the ensemble does not depend on how the jobs are sharded.
pub fn job_seed(base: u64, k: usize) -> u64 {
    base.wrapping_add(k as u64)
}

/// `--shard i/N`: the i-th (0-based) of N slices; job number j belongs to shard `j mod N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The jobs of this shard, in run order.
    pub fn select(&self, jobs: &[Job]) -> Vec<Job> {
        jobs.iter()
            .enumerate()
            .filter(|(j, _)| j % self.count == self.index)
            .map(|(_, job)| *job)
            .collect()
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Config(format!(
                "--shard {s:?}: {why}; expected i/N with 0 <= i < N (e.g. 0/4 .. 3/4, as $SLURM_ARRAY_TASK_ID/N)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index = i.trim().parse().map_err(|_| bad("i is not a number"))?;
        let count = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 || index >= count {
            return Err(bad("out of range"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a finished job records in `jobs/<id>/job.json` (the manifest collects these).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub variant: String,
    pub window: usize,
    pub seed_index: usize,
    pub seed: u64,
    /// Panel date indices (half-open) and their first/last dates.
    pub train: Range<usize>,
    pub val: Range<usize>,
    pub predict: Range<usize>,
    pub train_dates: (String, String),
    pub val_dates: (String, String),
    pub predict_dates: (String, String),
    pub losses: Losses,
    pub train_s: f64,
    /// `train_s` per epoch run (absent in records of older builds).
    #[serde(default)]
    pub s_per_epoch: Option<f64>,
    pub predict_s: f64,
    /// Peak resident memory of the process while the job ran, MiB (Linux; absent elsewhere
    /// and in records of older builds).
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
    pub host: String,
    pub pid: u32,
    pub device: String,
    pub code: CodeVersion,
    /// Unix seconds.
    pub finished_at: u64,
}

/// The training outcome of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Losses {
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    pub final_train_loss: f64,
    pub final_val_loss: f64,
    pub train_samples: usize,
    pub val_samples: usize,
}

impl From<&TrainReport> for Losses {
    fn from(r: &TrainReport) -> Self {
        let last = r.epochs.last();
        Losses {
            epochs_run: r.epochs.len(),
            best_epoch: r.best_epoch,
            best_val_loss: r.best_val_loss,
            final_train_loss: last.map_or(f64::NAN, |e| e.train_loss),
            final_val_loss: last.map_or(f64::NAN, |e| e.val_loss),
            train_samples: r.train_samples,
            val_samples: r.val_samples,
        }
    }
}

pub const RECORD: &str = "job.json";
pub const PREDICTION: &str = "prediction.npy";
pub const CHECKPOINT: &str = "checkpoint";

pub fn job_dir(run: &Path, id: &str) -> PathBuf {
    run.join("jobs").join(id)
}

pub fn is_finished(run: &Path, id: &str) -> bool {
    job_dir(run, id).join(RECORD).is_file()
}

pub fn read_record(run: &Path, id: &str) -> Result<JobRecord> {
    let path = job_dir(run, id).join(RECORD);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Data(format!("{}: not a job record: {e}", path.display())))
}

/// The job's predictions `[predict.len(), N]`, as the job wrote them.
pub fn read_prediction(run: &Path, id: &str) -> Result<NpyArray<f32>> {
    NpyArray::open(&job_dir(run, id).join(PREDICTION))
}

/// Records a finished job: checkpoint, predictions `[rows, N]` and record, as one atomic
/// directory. Temp directories of earlier, killed attempts at this job are removed first (the
/// caller holds the job's claim, so no live process is writing them). Returns false, writing
/// nothing, when the job is already finished: another process finished it meanwhile (possible
/// only when locks do not work on the run folder's file system); its result is kept.
pub fn write_job(
    run: &Path,
    record: &JobRecord,
    model: &Model<f32>,
    loss: &LossConfig,
    feature_names: &[String],
    report: &TrainReport,
    prediction: (&[f32], [usize; 2]),
) -> Result<bool> {
    let dir = job_dir(run, &record.id);
    if is_finished(run, &record.id) {
        return Ok(false);
    }
    remove_stale_temps(&dir)?;
    let json = serde_json::to_vec_pretty(record).expect("job record serializes");
    let written = write_dir_atomically(&dir, |tmp| {
        checkpoint::save(
            &tmp.join(CHECKPOINT),
            model,
            loss,
            feature_names,
            Some(report),
        )?;
        write_npy(&tmp.join(PREDICTION), &prediction.1, prediction.0)?;
        std::fs::write(tmp.join(RECORD), &json).map_err(|e| Error::io(tmp.join(RECORD), e))
    });
    match written {
        Ok(()) => Ok(true),
        Err(_) if is_finished(run, &record.id) => Ok(false),
        Err(Error::Exists { path }) => Err(in_the_way(&path)),
        Err(e) => Err(e),
    }
}

/// The first job of `ids` whose directory exists without a record: [`write_job`] writes a job
/// directory whole (record included) or not at all, so such a directory is debris that would
/// make the job's write fail after its training. Checked before any job trains.
pub fn check_no_debris<'a>(run: &Path, ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
    match ids
        .into_iter()
        .find(|id| job_dir(run, id).exists() && !is_finished(run, id))
    {
        Some(id) => Err(in_the_way(&job_dir(run, id))),
        None => Ok(()),
    }
}

fn in_the_way(path: &Path) -> Error {
    Error::Data(format!(
        "{}: an unfinished job directory (no {RECORD}) is in the way; it is not a finished job: \
         remove it and run again",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_jobs() {
        let jobs = all_jobs(3, 4, 5);
        assert_eq!(jobs.len(), 60);
        for n in 1..=7 {
            let mut seen: Vec<usize> = (0..n)
                .flat_map(|i| Shard { index: i, count: n }.select(&jobs))
                .map(|j| j.variant * 20 + j.window * 5 + j.seed_index)
                .collect();
            seen.sort();
            assert_eq!(seen, (0..60).collect::<Vec<_>>(), "N = {n}");
        }
    }

    #[test]
    fn shard_parses() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_stable() {
        let v = vec!["v2".to_string(), "v2.1+v2.3".to_string()];
        let j = Job {
            variant: 1,
            window: 3,
            seed_index: 7,
        };
        assert_eq!(j.id(&v), "v2.1+v2.3-w003-s07");
    }
}
