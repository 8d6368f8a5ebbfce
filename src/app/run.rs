//! `alphanet run`: the rolling protocol (docs/protocol.md) as one command. Plans the retraining windows,
//! locks the run's settings in `RUN/run.json`, runs this shard's unfinished (variant, window,
//! seed) jobs, and, when the run is not sharded, merges the seed ensembles into the factors.

use super::args::{init_threads, parse_ratio, DeviceArg, ModelArgs, NetArgs, TrainArgs};
use super::fit::fit;
use super::merge::merge_run;
use crate::cuda::{Backend, DeviceChoice};
use crate::data::fingerprint::FileFingerprint;
use crate::data::panel::Panel;
use crate::data::samples::PICTURE_DAYS;
use crate::fsutil::write_file_atomically;
use crate::model::{InputNorm, LossConfig, ModelConfig};
use crate::rolling::claim::{try_claim, ClaimOutcome, HeldBy, LOCKS};
use crate::rolling::jobs::{
    all_jobs, check_no_debris, is_finished, job_seed, write_job, Job, JobRecord, Shard,
};
use crate::rolling::manifest::{code_version, host, unix_now};
use crate::rolling::schedule::{plan_windows, Period, ScheduleConfig, Window};
use crate::train::predict::{predict_factor, Output};
use crate::train::trainer::TrainConfig;
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Runs started before the option existed fed raw pictures.
    #[serde(default)]
    pub input_norm: InputNorm,
    /// Its `seed` is the ensemble's base seed: seed index k trains with `job_seed(seed, k)`.
    pub train: TrainConfig,
}

/// The largest ensemble `--seeds` accepts.
pub const MAX_SEEDS: usize = 1000;

impl RunSpec {
    /// Model and loss configuration of variant `v` for a model seeded with `seed`.
    pub fn configs(&self, v: usize, seed: u64) -> Result<(ModelConfig, LossConfig)> {
        ModelArgs {
            variant: self.variants[v].replace('+', ","),
            model: None,
            pair_sample: None,
            neutralize_loss: false,
            long_weight: None,
            net: NetArgs {
                ops: self.ops.clone(),
                dropout: self.dropout,
                hidden: self.hidden,
                input_norm: self.input_norm,
            },
        }
        .configs(seed)
    }

    pub fn validate(&self) -> Result<()> {
        if self.variants.is_empty() || self.seeds == 0 || self.sample_every == 0 {
            return Err(Error::Config(
                "--variants must name at least one variant, --seeds and --sample-every must be at least 1".into(),
            ));
        }
        if self.seeds > MAX_SEEDS {
            return Err(Error::Config(format!(
                "--seeds {}: at most {MAX_SEEDS} models per window and variant",
                self.seeds
            )));
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

/// The panel a run was planned on (its path may change; its contents may not): its shape, its
/// codes and dates in order, and a content fingerprint of every array file
/// ([`crate::data::fingerprint`]). The last three are absent from the `run.json` of runs started
/// by builds before they were recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelIdentity {
    pub source: String,
    pub n_dates: usize,
    pub n_stocks: usize,
    pub first_date: String,
    pub last_date: String,
    pub feature_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileFingerprint>>,
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
            codes: Some(m.codes.clone()),
            dates: Some(m.dates.clone()),
            files: Some(panel.fingerprint()),
        }
    }

    /// Whether this (recorded) identity predates codes, dates and fingerprints.
    pub fn is_legacy(&self) -> bool {
        self.codes.is_none() || self.dates.is_none() || self.files.is_none()
    }

    /// What differs between the recorded identity `self` and `now`, one phrase each (empty when
    /// they agree). Parts `self` does not record are not compared.
    pub fn differences(&self, now: &PanelIdentity) -> Vec<String> {
        let mut out = Vec::new();
        if self.source != now.source {
            out.push(format!(
                "source {} (run) vs {} (this panel)",
                self.source, now.source
            ));
        }
        if self.feature_names != now.feature_names {
            out.push("feature names".into());
        }
        let list = |what: &str, a: &[String], b: &[String], unit: &str| -> Option<String> {
            if a == b {
                return None;
            }
            let span = |v: &[String]| match (v.first(), v.last()) {
                (Some(f), Some(l)) => format!("{} {unit} {f} .. {l}", v.len()),
                _ => format!("no {unit}"),
            };
            if a.len() != b.len() {
                return Some(format!(
                    "{what}: {} in the run, {} in this panel",
                    span(a),
                    span(b)
                ));
            }
            let diff: Vec<usize> = (0..a.len()).filter(|&k| a[k] != b[k]).collect();
            let k = diff[0];
            Some(format!(
                "{what}: {} of {} differ, first at position {k}: {} in the run, {} in this panel",
                diff.len(),
                a.len(),
                a[k],
                b[k]
            ))
        };
        match (&self.dates, &now.dates) {
            (Some(a), Some(b)) => out.extend(list("dates", a, b, "dates")),
            _ => {
                if (self.n_dates, &self.first_date, &self.last_date)
                    != (now.n_dates, &now.first_date, &now.last_date)
                {
                    out.push(format!(
                        "dates: {} dates {} .. {} in the run, {} dates {} .. {} in this panel",
                        self.n_dates,
                        self.first_date,
                        self.last_date,
                        now.n_dates,
                        now.first_date,
                        now.last_date
                    ));
                }
            }
        }
        match (&self.codes, &now.codes) {
            (Some(a), Some(b)) => out.extend(list("codes", a, b, "codes")),
            _ => {
                if self.n_stocks != now.n_stocks {
                    out.push(format!(
                        "codes: {} in the run, {} in this panel",
                        self.n_stocks, now.n_stocks
                    ));
                }
            }
        }
        if let (Some(a), Some(b)) = (&self.files, &now.files) {
            let names =
                |v: &[FileFingerprint]| v.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
            if names(a) != names(b) {
                out.push(format!(
                    "files: {:?} in the run, {:?} in this panel",
                    names(a),
                    names(b)
                ));
            } else {
                let sized: Vec<String> = a
                    .iter()
                    .zip(b)
                    .filter(|(x, y)| x.bytes != y.bytes)
                    .map(|(x, y)| {
                        format!("{} ({} bytes in the run, {} now)", x.name, x.bytes, y.bytes)
                    })
                    .collect();
                let changed: Vec<&str> = a
                    .iter()
                    .zip(b)
                    .filter(|(x, y)| x.bytes == y.bytes && x.hash != y.hash)
                    .map(|(x, _)| x.name.as_str())
                    .collect();
                if !sized.is_empty() {
                    out.push(format!("file sizes: {}", sized.join(", ")));
                }
                if !changed.is_empty() {
                    out.push(format!(
                        "contents of {} (same sizes, different data: another seed, a re-import or edited values)",
                        changed.join(", ")
                    ));
                }
            }
        }
        out
    }
}

/// The one warning line for a run whose `run.json` predates panel fingerprints.
pub fn warn_legacy_identity(run_dir: &Path) {
    eprintln!(
        "warning: {}/{RUN_FILE} was written by an older alphanet that did not record the panel's codes, \
         dates and content fingerprint: only its shape, dates and feature names are checked",
        run_dir.display()
    );
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
        if !path.is_file() {
            return Err(Error::Data(if run_dir.is_dir() {
                format!(
                    "{} is not a run folder (no {RUN_FILE}): give the --out folder of an \
                     `alphanet run`",
                    run_dir.display()
                )
            } else {
                format!(
                    "{}: no such folder; give the --out folder of an `alphanet run`",
                    run_dir.display()
                )
            }));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Data(format!(
                "{}: not the run.json of an `alphanet run` folder: {e}",
                path.display()
            ))
        })
    }

    /// The settings that differ, each as its flag with the run's value and this command's,
    /// e.g. `--seeds 2 (run) vs 3 (now)` (the panel is compared separately; its path is not a
    /// setting).
    fn differences(&self, other: &RunFile) -> Vec<String> {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        leaves(
            "",
            &serde_json::to_value(&self.spec).expect("spec serializes"),
            &mut a,
        );
        leaves(
            "",
            &serde_json::to_value(&other.spec).expect("spec serializes"),
            &mut b,
        );
        let value = |list: &[(String, String)], key: &str| {
            (list.iter().find(|(k, _)| k == key)).map_or("(unset)".to_string(), |(_, v)| v.clone())
        };
        let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| value(&a, k) != value(&b, k))
            .map(|k| {
                format!(
                    "{} {} (run) vs {} (now)",
                    flag_of(k),
                    value(&a, k),
                    value(&b, k)
                )
            })
            .collect()
    }
}

/// Every leaf of a settings value as (dotted path, value as JSON text).
fn leaves(path: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, x) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        _ => out.push((path.to_string(), v.to_string())),
    }
}

/// The flag that sets a settings path of `run.json` (the path itself where no flag does).
fn flag_of(path: &str) -> String {
    let flag = match path {
        "variants" => "--variants",
        "seeds" => "--seeds",
        "schedule.start" => "--start",
        "schedule.end" => "--end",
        "schedule.insample_days" => "--insample-days",
        "schedule.split" => "--split",
        "sample_every" => "--sample-every",
        "hidden" => "--hidden",
        "dropout" => "--dropout",
        "ops" => "--ops",
        "input_norm" => "--input-norm",
        "train.epochs" => "--epochs",
        "train.patience" => "--patience",
        "train.batch_size" => "--batch",
        "train.adam.lr" => "--lr",
        "train.seed" => "--seed",
        "train.select_by" => "--select-by",
        "train.label" => "--label",
        p if p.starts_with("schedule.every") => "--retrain-every",
        p => return p.to_string(),
    };
    flag.to_string()
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
    /// Jobs this process trained.
    pub ran: usize,
    /// Jobs already finished when it started.
    pub skipped: usize,
    /// Jobs another process trained (or is still training, for a sharded run) meanwhile.
    pub by_others: usize,
}

/// Predictions are made in batches of this many samples.
const PREDICT_BATCH: usize = 4096;
/// How often an unsharded run looks again at jobs other processes are training.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

pub fn run(opts: &RunOptions) -> Result<RunSummary> {
    let spec = &opts.spec;
    spec.validate()?;
    let backend = Backend::open(opts.device)?;
    let device = backend.describe();
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
    let ids: Vec<String> = todo.iter().map(|j| j.id(&spec.variants)).collect();
    check_no_debris(&opts.out, ids.iter().map(String::as_str))?;
    eprintln!(
        "shard {}: {} of {} jobs, {} already finished, {} to run on {device}",
        opts.shard,
        mine.len(),
        jobs.len(),
        mine.len() - todo.len(),
        todo.len()
    );
    let bar = progress_bar(todo.len());
    let mut ran = 0;
    let mut by_others = 0;
    // Jobs another live process holds, with who holds them.
    let mut held: Vec<(Job, HeldBy)> = Vec::new();
    let mut pending: std::collections::VecDeque<Job> = todo.iter().copied().collect();
    let mut announced_wait = false;
    loop {
        let mut trained_this_pass = false;
        while let Some(job) = pending.pop_front() {
            let id = job.id(&spec.variants);
            let claim = match try_claim(&opts.out, &id)? {
                ClaimOutcome::Claimed(c) => c,
                ClaimOutcome::Finished => {
                    // Counted and said, so the [k/N] lines run without gaps.
                    by_others += 1;
                    bar.inc(1);
                    let done = bar.position();
                    bar.suspend(|| {
                        eprintln!("[{done}/{}] {id}: finished by another process", todo.len())
                    });
                    continue;
                }
                ClaimOutcome::Held(h) => {
                    held.push((job, h));
                    continue;
                }
            };
            bar.set_message(id.clone());
            trained_this_pass = true;
            let record = run_job(&backend, &panel, spec, &windows[job.window], job, &opts.out)
                .inspect_err(|_| bar.suspend(|| eprintln!("job {id} failed")))?;
            drop(claim);
            bar.inc(1);
            let Some(record) = record else {
                by_others += 1;
                let done = bar.position();
                bar.suspend(|| {
                    eprintln!(
                        "[{done}/{}] {id}: finished by another process while this one trained it: its result is kept, this one's discarded",
                        todo.len()
                    )
                });
                continue;
            };
            ran += 1;
            let l = &record.losses;
            // Read before `suspend`, which holds the bar's lock.
            let eta = indicatif::HumanDuration(bar.eta());
            let done = bar.position();
            bar.suspend(|| {
                let peak = record
                    .peak_rss_mib
                    .map_or(String::new(), |m| format!(", peak memory {m:.0} MiB"));
                eprintln!(
                    "[{}/{}] {id}: best epoch {}/{}, validation loss {:.4}, {} samples/epoch, \
                     {:.1} s/epoch, {:.1} s{peak}; ETA {}",
                    done,
                    todo.len(),
                    l.best_epoch,
                    l.epochs_run,
                    l.best_val_loss,
                    l.train_samples,
                    record.s_per_epoch.unwrap_or(f64::NAN),
                    record.train_s + record.predict_s,
                    eta
                )
            });
        }
        if held.is_empty() {
            break;
        }
        if opts.shard.count > 1 {
            // A sharded run does not merge: what other processes train is theirs to finish.
            by_others += held.len();
            bar.suspend(|| {
                eprintln!(
                    "note: {} job(s) of shard {} are being trained by other processes (e.g. {} by {}); this process leaves them to those",
                    held.len(),
                    opts.shard,
                    held[0].0.id(&spec.variants),
                    held[0].1
                )
            });
            break;
        }
        if trained_this_pass {
            // The held list may be minutes old: look again at once before waiting on it.
            pending.extend(held.drain(..).map(|(j, _)| j));
            continue;
        }
        if !announced_wait {
            bar.suspend(|| {
                eprintln!(
                    "waiting for {} job(s) that other processes are training (e.g. {} by {}); a lock whose process dies is taken over",
                    held.len(),
                    held[0].0.id(&spec.variants),
                    held[0].1
                )
            });
            announced_wait = true;
        }
        std::thread::sleep(WAIT_POLL);
        pending.extend(held.drain(..).map(|(j, _)| j));
    }
    bar.finish_and_clear();
    let summary = RunSummary {
        jobs: mine.len(),
        ran,
        skipped: mine.len() - todo.len(),
        by_others,
    };
    let others = if by_others > 0 {
        format!(", {by_others} trained by other processes")
    } else {
        String::new()
    };
    println!(
        "shard {}: ran {} jobs, skipped {} finished{others}",
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
    super::fit::warn_empty_dates(
        panel,
        windows[0].insample.start.saturating_sub(PICTURE_DAYS - 1)..panel.n_dates(),
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
        let recorded = RunFile::read(out)?;
        if recorded.panel.is_legacy() {
            warn_legacy_identity(out);
        }
        let diffs = recorded.differences(file);
        if !diffs.is_empty() {
            return Err(Error::Config(format!(
                "{} was started with different settings ({}): resume it with the same flags and panel, or choose a new --out",
                out.display(),
                diffs.join(", ")
            )));
        }
        let panel = recorded.panel.differences(&file.panel);
        if !panel.is_empty() {
            return Err(Error::PanelMismatch {
                panel: file.panel_dir.clone(),
                run: out.to_path_buf(),
                diffs: panel.join("; "),
                fix: format!(
                    "resume with the panel the run was started on ({}), or choose a new --out",
                    recorded.panel_dir.display()
                ),
            });
        }
        return Ok(());
    }
    if out.exists() {
        let foreign = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .filter_map(|e| e.ok())
            .any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !(name == "jobs" || name == LOCKS || name.starts_with(&format!(".{RUN_FILE}.tmp-")))
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
    backend: &Backend,
    panel: &Panel,
    spec: &RunSpec,
    window: &Window,
    job: Job,
    run_dir: &Path,
) -> Result<Option<JobRecord>> {
    let seed = job_seed(spec.train.seed, job.seed_index);
    let (model, loss) = spec.configs(job.variant, seed)?;
    let cfg = TrainConfig {
        seed,
        ..spec.train.clone()
    };
    crate::sysmem::reset_peak_rss();
    let t0 = Instant::now();
    let fitted = fit(
        backend,
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
        backend,
        panel,
        &fitted.model,
        window.predict.clone(),
        PREDICT_BATCH,
        Output::of(&loss),
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
        s_per_epoch: Some(train_s / fitted.report.epochs.len().max(1) as f64),
        predict_s: t1.elapsed().as_secs_f64(),
        peak_rss_mib: crate::sysmem::peak_rss_mib(),
        host: host(),
        pid: std::process::id(),
        device: backend.describe(),
        code: code_version().clone(),
        finished_at: unix_now(),
    };
    let written = write_job(
        run_dir,
        &record,
        &fitted.model,
        &loss,
        &panel.meta().feature_names,
        &fitted.report,
        (rows, [window.predict.len(), n]),
    )?;
    Ok(written.then_some(record))
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
