//! `alphanet run` / `alphanet merge` through the built binary on a tiny synthetic panel: sharded
//! runs merge to the unsharded factor bit for bit, a SIGKILLed run resumes without redoing
//! finished jobs, purge holds in every window, and the Slurm script submits what it should.

use alphanet::data::calendar::{format_date, parse_date, weekday};
use alphanet::data::npy::NpyArray;
use alphanet::data::samples::HORIZON;
use alphanet::rolling::jobs::JobRecord;
use alphanet::rolling::schedule::{plan_windows, Period, ScheduleConfig, Window};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;
use common::{alphanet, fixture, ok};

const VARIANTS: [&str; 4] = ["v2", "v2.1", "v2.2", "v2.3"];
/// 4 variants × 3 windows × 2 seeds.
const JOBS: usize = 24;

/// `alphanet run` with the small settings of this file, plus `extra`.
fn run_cmd(out: &Path, extra: &[&str]) -> Command {
    run_cmd_seeds(out, "2", extra)
}

fn run_cmd_seeds(out: &Path, seeds: &str, extra: &[&str]) -> Command {
    let mut cmd = alphanet();
    cmd.args(["run", "--panel"])
        .arg(&fixture().panel)
        .arg("--out")
        .arg(out)
        .args([
            "--variants",
            &VARIANTS.join(","),
            "--seeds",
            seeds,
            "--start",
            "2016-09-01",
            "--retrain-every",
            "3M",
            "--insample-days",
            "200",
            "--sample-every",
            "2",
            "--split",
            "4:1",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--batch",
            "500",
            "--threads",
            "1",
        ])
        .args(extra);
    cmd
}

/// The unsharded run, done once and shared.
fn unsharded() -> &'static (PathBuf, Output) {
    static RUN: OnceLock<(PathBuf, Output)> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = fixture().root.join("unsharded");
        let output = ok(run_cmd(&out, &[]).output().unwrap());
        (out, output)
    })
}

fn factor_bytes(run: &Path, variant: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = run.join("factors").join(variant);
    (
        std::fs::read(dir.join("factor.npy")).unwrap(),
        std::fs::read(dir.join("factor.csv")).unwrap(),
    )
}

fn finished(run: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(run.join("jobs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("job.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

fn records(run: &Path) -> Vec<JobRecord> {
    finished(run)
        .iter()
        .map(|id| {
            let text = std::fs::read_to_string(run.join("jobs").join(id).join("job.json")).unwrap();
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

#[test]
fn unsharded_run_writes_every_variant_and_says_it_shrank() {
    let (run, output) = unsharded();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in-sample shrunk"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("ran 24 jobs, skipped 0 finished"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(finished(run).len(), JOBS);
    for v in VARIANTS {
        let npy = NpyArray::<f32>::open(&run.join("factors").join(v).join("factor.npy")).unwrap();
        // 2016-09-01 .. the panel's end; some stocks are suspended, most are predicted.
        assert_eq!(npy.shape()[1], 40);
        let finite = npy.as_slice().iter().filter(|x| x.is_finite()).count();
        assert!(finite > npy.as_slice().len() * 3 / 4, "{v}: {finite}");
    }
    // Each window's rows of the factor are the mean of its two seeds' predictions (which differ).
    let npy = |p: PathBuf| NpyArray::<f32>::open(&p).unwrap();
    let factor = npy(run.join("factors/v2.1/factor.npy"));
    let recs = records(run);
    let first = recs[0].predict.start;
    for w in 0..3 {
        let id = |s: usize| format!("v2.1-w{w:03}-s{s:02}");
        let (a, b) = (
            npy(run.join("jobs").join(id(0)).join("prediction.npy")),
            npy(run.join("jobs").join(id(1)).join("prediction.npy")),
        );
        let dates = &recs.iter().find(|r| r.id == id(0)).unwrap().predict;
        let rows = &factor.as_slice()[(dates.start - first) * 40..(dates.end - first) * 40];
        assert_eq!(rows.len(), a.as_slice().len());
        assert!(a
            .as_slice()
            .iter()
            .zip(b.as_slice())
            .any(|(x, y)| x.is_finite() && x != y));
        for ((&x, &y), &f) in a.as_slice().iter().zip(b.as_slice()).zip(rows) {
            let mean = ((x as f64 + y as f64) / 2.0) as f32;
            assert!(mean == f || (mean.is_nan() && f.is_nan()), "{x} {y} {f}");
        }
    }
    // A job's checkpoint is the model that made its predictions.
    let job = &recs[5];
    let check = fixture().root.join("predict-check");
    ok(alphanet()
        .arg("predict")
        .arg("--checkpoint")
        .arg(run.join("jobs").join(&job.id).join("checkpoint"))
        .arg("--panel")
        .arg(&fixture().panel)
        .args(["--from", &job.predict_dates.0, "--to", &job.predict_dates.1])
        .arg("--out")
        .arg(&check)
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read(check.join("factor.npy")).unwrap(),
        std::fs::read(run.join("jobs").join(&job.id).join("prediction.npy")).unwrap(),
        "{}",
        job.id
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["jobs"].as_array().unwrap().len(), JOBS);
    assert_eq!(manifest["windows"].as_array().unwrap().len(), 3);
    assert!(manifest["jobs"][0]["losses"]["best_val_loss"].is_number());
    assert!(manifest["jobs"][0]["train_s"].is_number());
    assert!(manifest["merged_on"]["host"].is_string());
    assert_eq!(manifest["code"]["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn two_shards_in_separate_processes_merge_to_the_unsharded_factor_bit_for_bit() {
    let out = fixture().root.join("sharded");
    // Both shards start together, as Slurm array tasks do, and race to create the run folder.
    let children: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            run_cmd(&out, &["--shard", s])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = ok(c.wait_with_output().unwrap());
        assert!(String::from_utf8_lossy(&o.stdout).contains("ran 12 jobs"));
    }
    assert!(
        !out.join("factors").exists(),
        "a sharded run must leave merging to `alphanet merge`"
    );
    ok(alphanet().arg("merge").arg(&out).output().unwrap());
    let (base, _) = unsharded();
    for v in VARIANTS {
        assert!(
            factor_bytes(&out, v) == factor_bytes(base, v),
            "{v}: sharded factor differs from the unsharded one"
        );
    }
}

#[test]
fn killed_run_resumes_without_redoing_finished_jobs() {
    let out = fixture().root.join("killed");
    let mut child = run_cmd(&out, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while finished_or_empty(&out).len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no job finished in 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = records(&out);
    let done: Vec<String> = before.iter().map(|r| r.id.clone()).collect();
    assert!(
        done.len() >= 3 && done.len() < JOBS,
        "killed after {} jobs",
        done.len()
    );

    let merge = alphanet().arg("merge").arg(&out).output().unwrap();
    assert!(!merge.status.success());
    assert!(String::from_utf8_lossy(&merge.stderr).contains("are not finished"));

    // What a kill during the write of the last job's directory would leave behind.
    let stale = out.join("jobs").join(".v2.3-w002-s01.tmp-999999");
    std::fs::create_dir_all(stale.join("checkpoint")).unwrap();
    std::fs::write(stale.join("prediction.npy"), b"half").unwrap();

    let resumed = ok(run_cmd(&out, &[]).output().unwrap());
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    let expect = format!(
        "ran {} jobs, skipped {} finished",
        JOBS - done.len(),
        done.len()
    );
    assert!(stdout.contains(&expect), "{stdout}");
    let after = records(&out);
    assert_eq!(after.len(), JOBS);
    for b in &before {
        let a = after.iter().find(|a| a.id == b.id).unwrap();
        assert_eq!(
            (a.pid, a.finished_at),
            (b.pid, b.finished_at),
            "{} was redone",
            b.id
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(out.join("jobs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "temp directories left: {leftovers:?}");
    let (base, _) = unsharded();
    for v in VARIANTS {
        assert!(
            factor_bytes(&out, v) == factor_bytes(base, v),
            "{v}: resumed factor differs from the uninterrupted one"
        );
    }
}

fn finished_or_empty(run: &Path) -> Vec<String> {
    if run.join("jobs").is_dir() {
        finished(run)
    } else {
        vec![]
    }
}

/// Mon–Fri dates of `[from, to)`.
fn business_days(from: &str, to: &str) -> Vec<String> {
    (parse_date(from).unwrap()..parse_date(to).unwrap())
        .filter(|&d| weekday(d) < 5)
        .map(format_date)
        .collect()
}

fn assert_purged(w: &Window, dates: &[String]) {
    let ctx = format!("window {} {:?}", w.index, w);
    assert_eq!(w.train.start, w.insample.start, "{ctx}");
    assert_eq!(w.val.end, w.insample.end, "{ctx}");
    // The last label window of each part ends before the next part's first date.
    assert!(w.train.end - 1 + HORIZON < w.val.start, "{ctx}");
    assert!(w.val.end - 1 + HORIZON < w.predict.start, "{ctx}");
    assert!(w.insample.start >= 29, "{ctx}");
    assert!(
        w.train.len() >= 3 * w.val.len(),
        "{ctx}: not a 4:1 split ({} dates)",
        dates.len()
    );
}

#[test]
fn purge_holds_for_every_window() {
    // The report's protocol on a 2005–2020 calendar: half-yearly from 2011-01-31, 1500 days.
    let dates = business_days("2005-01-03", "2021-01-01");
    let report = ScheduleConfig {
        start: "2011-01-31".into(),
        end: None,
        every: Period::Months(6),
        insample_days: 1500,
        split: (4, 1),
    };
    let windows = plan_windows(&dates, &report).unwrap();
    assert_eq!(windows.len(), 20);
    assert_eq!(dates[windows[0].predict.start], "2011-01-31");
    assert_eq!(dates[windows[1].predict.start], "2011-08-01"); // 07-31 is a Sunday
    assert_eq!(dates[windows[2].predict.start], "2012-01-31");
    for w in &windows {
        assert_purged(w, &dates);
        assert_eq!(w.insample.len(), 1500);
        assert_eq!(w.shrunk_to, None);
    }
    // Shorter histories shrink, trading-day periods, and the windows tile the test span.
    for (every, days) in [
        (Period::Months(3), 200),
        (Period::TradingDays(50), 10_000),
        (Period::Months(1), 60),
    ] {
        let cfg = ScheduleConfig {
            start: "2016-09-03".into(), // a Saturday
            end: None,
            every,
            insample_days: days,
            split: (4, 1),
        };
        let dates = business_days("2016-01-04", "2017-06-01");
        let windows = plan_windows(&dates, &cfg).unwrap();
        assert_eq!(dates[windows[0].predict.start], "2016-09-05");
        assert_eq!(windows.last().unwrap().predict.end, dates.len());
        for pair in windows.windows(2) {
            assert_eq!(pair[0].predict.end, pair[1].predict.start);
        }
        for w in &windows {
            assert_purged(w, &dates);
            assert!(w.insample.len() <= days);
            assert_eq!(w.shrunk_to.is_some(), w.insample.len() < days);
        }
    }
    // What the jobs of a real run trained on (from their records).
    let (run, _) = unsharded();
    for r in records(run) {
        assert!(r.train.end - 1 + HORIZON < r.val.start, "{}", r.id);
        assert!(r.val.end - 1 + HORIZON < r.predict.start, "{}", r.id);
    }
}

#[test]
fn a_start_without_enough_history_is_refused() {
    let dates = business_days("2016-01-04", "2017-01-01");
    let cfg = ScheduleConfig {
        start: "2016-02-20".into(),
        end: None,
        every: Period::Months(6),
        insample_days: 1500,
        split: (4, 1),
    };
    let e = plan_windows(&dates, &cfg).unwrap_err().to_string();
    assert!(e.contains("choose a later --start"), "{e}");
    // Too few --insample-days where the panel has more history: a later start would not help.
    let cfg = ScheduleConfig {
        start: "2016-11-01".into(),
        insample_days: 10,
        ..cfg
    };
    let e = plan_windows(&dates, &cfg).unwrap_err().to_string();
    assert!(
        e.contains("choose a larger --insample-days") && !e.contains("--start"),
        "{e}"
    );
}

#[test]
fn resuming_with_other_settings_is_refused() {
    let (run, _) = unsharded();
    let out = run_cmd_seeds(run, "3", &[]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("different settings (--seeds 2 (run) vs 3 (now))"),
        "{stderr}"
    );
}

#[test]
fn an_unusable_cuda_device_fails_clearly() {
    let out = run_cmd(&fixture().root.join("nogpu"), &["--device", "cuda:99"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--device cuda:99 cannot be used"),
        "{stderr}"
    );
}

#[test]
fn slurm_script_submits_an_array_and_a_dependent_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let (bin, log) = (tmp.path().join("bin"), tmp.path().join("calls"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    // A stand-in sbatch: records its arguments, answers a job id like `sbatch --parsable`.
    let stub = bin.join("sbatch");
    std::fs::write(
        &stub,
        "#!/usr/bin/env bash\nn=$(ls \"$STUB_LOG\" | wc -l)\nprintf '%s\\n' \"$@\" > \"$STUB_LOG/$n\"\necho \"$((500 + n));cluster\"\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&stub).status().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm_rolling.sh");
    let out = ok(Command::new("bash")
        .arg(&script)
        .args(["4", "runs/r1", "--panel", "data/p", "--seeds", "10"])
        .current_dir(tmp.path())
        .env("STUB_LOG", &log)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("MAX_PARALLEL", "2")
        .output()
        .unwrap());
    assert!(String::from_utf8_lossy(&out.stdout).contains("array job 500"));
    let array = std::fs::read_to_string(log.join("0")).unwrap();
    let merge = std::fs::read_to_string(log.join("1")).unwrap();
    for want in [
        "--array=0-3%2",
        "--gres=gpu:1",
        "run --out runs/r1 --device cuda:0 --threads 8 --panel data/p --seeds 10 --shard \"$SLURM_ARRAY_TASK_ID/4\"",
    ] {
        assert!(array.contains(want), "{want} not in\n{array}");
    }
    for want in ["--dependency=afterok:500\n", "merge runs/r1"] {
        assert!(merge.contains(want), "{want} not in\n{merge}");
    }
}
