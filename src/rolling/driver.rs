//! Running a rolling protocol: plans the retraining windows, locks the run's settings in
//! `RUN/run.json` ([`super::record`]), claims and trains this shard's unfinished (variant, window,
//! seed) jobs, waits for jobs other processes hold, and, when the run is not sharded, merges the
//! seed ensembles into the factors ([`super::merge`]).

use super::merge::merge_run;
use super::record::{lock, PanelIdentity, RunFile, RunSpec};
use crate::cuda::{Backend, DeviceChoice};
use crate::data::panel::Panel;
use crate::data::samples::PICTURE_DAYS;
use crate::rolling::claim::{try_claim, ClaimOutcome, HeldBy};
use crate::rolling::jobs::{
    all_jobs, check_no_debris, is_finished, job_seed, write_job, Job, JobRecord, Shard,
};
use crate::rolling::manifest::{code_version, host, unix_now};
use crate::rolling::schedule::{plan_windows, Window};
use crate::train::fit::fit;
use crate::train::predict::{predict_factor, Output};
use crate::train::trainer::TrainConfig;
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    crate::train::fit::warn_empty_dates(
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
    crate::util::system::reset_peak_rss();
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
        peak_rss_mib: crate::util::system::peak_rss_mib(),
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
