//! `alphanet run`: the rolling protocol (docs/protocol.md) as one command. Plans the retraining windows,
//! locks the run's settings in `RUN/run.json`, runs this shard's unfinished (variant, window,
//! seed) jobs, and, when the run is not sharded, merges the seed ensembles into the factors.

use super::args::ModelArgs;
use super::fit::fit;
use super::merge::merge_run;
use crate::cuda::{Backend, DeviceChoice};
use crate::data::panel::Panel;
use crate::fsutil::write_file_atomically;
use crate::model::{LossConfig, ModelConfig};
use crate::rolling::jobs::{all_jobs, is_finished, job_seed, write_job, Job, JobRecord, Shard};
use crate::rolling::manifest::{code_version, host, unix_now};
use crate::rolling::schedule::{plan_windows, ScheduleConfig, Window};
use crate::train::predict::predict_factor;
use crate::train::trainer::TrainConfig;
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything that determines a run's results; a resumed or sharded run must repeat it exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// Report variants, one model family each; `+` combines (`v2.1+v2.3`).
    pub variants: Vec<String>,
    /// Models per window and variant (the ensemble size).
    pub seeds: usize,
    pub schedule: ScheduleConfig,
    pub sample_every: usize,
    pub hidden: usize,
    pub dropout: f64,
    pub ops: String,
    /// Its `seed` is the ensemble's base seed: seed index k trains with `job_seed(seed, k)`.
    pub train: TrainConfig,
}

impl RunSpec {
    /// Model and loss configuration of variant `v` for a model seeded with `seed`.
    pub fn configs(&self, v: usize, seed: u64) -> Result<(ModelConfig, LossConfig)> {
        ModelArgs {
            variant: self.variants[v].replace('+', ","),
            model: None,
            pair_sample: None,
            neutralize_loss: false,
            long_weight: None,
            ops: self.ops.clone(),
            dropout: self.dropout,
            hidden: self.hidden,
        }
        .configs(seed)
    }

    fn validate(&self) -> Result<()> {
        if self.variants.is_empty() || self.seeds == 0 || self.sample_every == 0 {
            return Err(Error::Config(
                "--variants must name at least one variant, --seeds and --sample-every must be at least 1".into(),
            ));
        }
        for (k, v) in self.variants.iter().enumerate() {
            if self.variants[..k].contains(v) {
                return Err(Error::Config(format!("--variants lists {v} twice")));
            }
            self.configs(k, 0)?;
        }
        Ok(())
    }
}

/// The panel a run was planned on (its path may change; its contents may not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelIdentity {
    pub source: String,
    pub n_dates: usize,
    pub n_stocks: usize,
    pub first_date: String,
    pub last_date: String,
    pub feature_names: Vec<String>,
}

impl PanelIdentity {
    pub fn of(panel: &Panel) -> Self {
        let m = panel.meta();
        PanelIdentity {
            source: m.source.clone(),
            n_dates: panel.n_dates(),
            n_stocks: panel.n_stocks(),
            first_date: m.dates[0].clone(),
            last_date: m.dates[m.dates.len() - 1].clone(),
            feature_names: m.feature_names.clone(),
        }
    }
}

/// `RUN/run.json`: written by the first process of a run, checked by every later one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    pub spec: RunSpec,
    pub panel: PanelIdentity,
    pub panel_dir: PathBuf,
}

pub const RUN_FILE: &str = "run.json";

impl RunFile {
    pub fn read(run_dir: &Path) -> Result<RunFile> {
        let path = run_dir.join(RUN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Data(format!(
                "{}: not the run.json of an `alphanet run` folder: {e}",
                path.display()
            ))
        })
    }

    /// Names of the settings that differ (the panel's path is not a setting).
    fn differences(&self, other: &RunFile) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(&self.spec).expect("spec serializes"),
            serde_json::to_value(&other.spec).expect("spec serializes"),
        );
        let mut diffs: Vec<String> = a
            .as_object()
            .expect("spec is an object")
            .iter()
            .filter(|(k, v)| b.get(k.as_str()) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        if self.panel != other.panel {
            diffs.push("panel".into());
        }
        diffs
    }
}

pub struct RunOptions {
    pub panel: PathBuf,
    pub out: PathBuf,
    pub spec: RunSpec,
    pub shard: Shard,
    pub device: DeviceChoice,
}

pub struct RunSummary {
    pub jobs: usize,
    pub ran: usize,
    pub skipped: usize,
}

/// Predictions are made in batches of this many samples.
const PREDICT_BATCH: usize = 4096;

pub fn run(opts: &RunOptions) -> Result<RunSummary> {
    let spec = &opts.spec;
    spec.validate()?;
    let device = select_device(opts.device)?;
    let panel = Panel::open(&opts.panel)?;
    let windows = plan_windows(&panel.meta().dates, &spec.schedule)?;
    describe(&panel, spec, &windows);
    let file = RunFile {
        spec: spec.clone(),
        panel: PanelIdentity::of(&panel),
        panel_dir: std::fs::canonicalize(&opts.panel).map_err(|e| Error::io(&opts.panel, e))?,
    };
    lock(&opts.out, &file)?;

    let jobs = all_jobs(spec.variants.len(), windows.len(), spec.seeds);
    let mine = opts.shard.select(&jobs);
    let todo: Vec<Job> = mine
        .iter()
        .filter(|j| !is_finished(&opts.out, &j.id(&spec.variants)))
        .copied()
        .collect();
    eprintln!(
        "shard {}: {} of {} jobs, {} already finished, {} to run on {device}",
        opts.shard,
        mine.len(),
        jobs.len(),
        mine.len() - todo.len(),
        todo.len()
    );
    let bar = progress_bar(todo.len());
    for (k, job) in todo.iter().enumerate() {
        let id = job.id(&spec.variants);
        bar.set_message(id.clone());
        let record = run_job(&panel, spec, &windows[job.window], *job, &opts.out, &device)
            .inspect_err(|_| bar.suspend(|| eprintln!("job {id} failed")))?;
        bar.inc(1);
        let l = &record.losses;
        // Read before `suspend`, which holds the bar's lock.
        let eta = indicatif::HumanDuration(bar.eta());
        bar.suspend(|| {
            eprintln!(
                "[{}/{}] {id}: best epoch {}/{}, validation loss {:.4}, {:.1} s; ETA {}",
                k + 1,
                todo.len(),
                l.best_epoch,
                l.epochs_run,
                l.best_val_loss,
                record.train_s + record.predict_s,
                eta
            )
        });
    }
    bar.finish_and_clear();
    let summary = RunSummary {
        jobs: mine.len(),
        ran: todo.len(),
        skipped: mine.len() - todo.len(),
    };
    println!(
        "shard {}: ran {} jobs, skipped {} finished",
        opts.shard, summary.ran, summary.skipped
    );
    if opts.shard.count == 1 {
        merge_run(&opts.out, &file, &panel)?;
    } else {
        println!(
            "when every shard has finished: alphanet merge {}",
            opts.out.display()
        );
    }
    Ok(summary)
}

/// Validates `--device`. Training runs on the CPU until the CUDA training path exists: a usable
/// GPU is said so, an unusable `cuda:K` is an error, `auto` without a GPU prints why.
fn select_device(choice: DeviceChoice) -> Result<String> {
    let (backend, note) = Backend::select(choice).map_err(|e| match e {
        Error::Cuda(m) => Error::Cuda(format!("--device {choice} cannot be used: {m}")),
        e => e,
    })?;
    if let Some(n) = note {
        eprintln!("note: --device {choice}: {n}");
    }
    if let Backend::Cuda(_) = backend {
        eprintln!(
            "note: {} is usable, but CUDA training is not implemented yet: the jobs run on the CPU",
            backend.describe()
        );
    }
    Ok(Backend::Cpu.describe())
}

fn describe(panel: &Panel, spec: &RunSpec, windows: &[Window]) {
    let dates = &panel.meta().dates;
    let last = &windows[windows.len() - 1];
    eprintln!(
        "{} window(s) predicting {} .. {}, retrained every {}; {} variant(s) × {} seed(s)",
        windows.len(),
        dates[windows[0].predict.start],
        dates[last.predict.end - 1],
        spec.schedule.every,
        spec.variants.len(),
        spec.seeds
    );
    for w in windows {
        if let Some(n) = w.shrunk_to {
            eprintln!(
                "note: window {} (predicting from {}): in-sample shrunk to the {n} trading days the panel has, of the {} asked (--insample-days)",
                w.index, dates[w.predict.start], spec.schedule.insample_days
            );
        }
    }
}

/// Creates `out` with `run.json`, or checks that an existing run was started with the same
/// settings. Shards starting together may both write `run.json`: the rename makes that safe, and
/// the contents are the same.
fn lock(out: &Path, file: &RunFile) -> Result<()> {
    if out.join(RUN_FILE).is_file() {
        let diffs = RunFile::read(out)?.differences(file);
        if diffs.is_empty() {
            return Ok(());
        }
        return Err(Error::Config(format!(
            "{} was started with different settings ({}): resume it with the same flags and panel, or choose a new --out",
            out.display(),
            diffs.join(", ")
        )));
    }
    if out.exists() {
        let foreign = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .filter_map(|e| e.ok())
            .any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !(name == "jobs" || name.starts_with(&format!(".{RUN_FILE}.tmp-")))
            });
        if foreign {
            return Err(Error::Config(format!(
                "{} exists and is not a run folder (no {RUN_FILE}): choose a new --out",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out.join("jobs")).map_err(|e| Error::io(out, e))?;
    let json = serde_json::to_vec_pretty(file).expect("run file serializes");
    write_file_atomically(&out.join(RUN_FILE), &json)
}

fn run_job(
    panel: &Panel,
    spec: &RunSpec,
    window: &Window,
    job: Job,
    run_dir: &Path,
    device: &str,
) -> Result<JobRecord> {
    let seed = job_seed(spec.train.seed, job.seed_index);
    let (model, loss) = spec.configs(job.variant, seed)?;
    let cfg = TrainConfig {
        seed,
        ..spec.train.clone()
    };
    let t0 = Instant::now();
    let mut fitted = fit(
        panel,
        &model,
        &loss,
        &cfg,
        window.insample.clone(),
        spec.sample_every,
        spec.schedule.split,
        false,
    )?;
    let train_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let factor = predict_factor(
        panel,
        &mut fitted.model,
        window.predict.clone(),
        PREDICT_BATCH,
    )?;
    let n = panel.n_stocks();
    let rows = &factor[window.predict.start * n..window.predict.end * n];
    let dates = &panel.meta().dates;
    let span = |r: &Range<usize>| (dates[r.start].clone(), dates[r.end - 1].clone());
    let record = JobRecord {
        id: job.id(&spec.variants),
        variant: spec.variants[job.variant].clone(),
        window: job.window,
        seed_index: job.seed_index,
        seed,
        train_dates: span(&fitted.train_dates),
        val_dates: span(&fitted.val_dates),
        predict_dates: span(&window.predict),
        train: fitted.train_dates.clone(),
        val: fitted.val_dates.clone(),
        predict: window.predict.clone(),
        losses: (&fitted.report).into(),
        train_s,
        predict_s: t1.elapsed().as_secs_f64(),
        host: host(),
        pid: std::process::id(),
        device: device.to_string(),
        code: code_version().clone(),
        finished_at: unix_now(),
    };
    write_job(
        run_dir,
        &record,
        &fitted.model,
        &loss,
        &panel.meta().feature_names,
        &fitted.report,
        (rows, [window.predict.len(), n]),
    )?;
    Ok(record)
}

fn progress_bar(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "jobs {pos}/{len} [{bar:30}] {elapsed_precise} ETA {eta_precise} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar
}
