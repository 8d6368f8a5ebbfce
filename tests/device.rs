//! One model, two backends, through the built binary (docs/engine.md#devices): every model and
//! variant trains with `--device cuda:0`, and its checkpoint predicts the same on the CPU and the
//! GPU; `run` on the GPU gives the same bits twice and after a kill and resume.
//!
//! On a machine without a GPU the commands run on the CPU stand-in of the CUDA driver
//! (`ALPHANET_CUDA=emulator`, docs/cuda_emulator.md); with ALPHANET_REQUIRE_GPU=1 a missing GPU
//! fails.

use alphanet::data::npy::NpyArray;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;
use common::{fixture, ok};

/// Whether the commands must be pointed at the stand-in: no usable GPU here.
fn emulated() -> bool {
    static E: OnceLock<bool> = OnceLock::new();
    *E.get_or_init(|| {
        let gpu = alphanet::cuda::open_for_tests().expect("a GPU or the CUDA stand-in");
        eprintln!("device: {} (kernels from {})", gpu.info, gpu.kernels_from);
        gpu.info.emulated
    })
}

/// The binary under test: this build's, or `ALPHANET_BIN` (scripts/gpu_check.sh runs the tests
/// on a machine where the build folder does not exist).
fn alphanet(args: &[&str]) -> Command {
    let bin = std::env::var("ALPHANET_BIN").unwrap_or(env!("CARGO_BIN_EXE_alphanet").into());
    let mut cmd = Command::new(bin);
    if emulated() {
        cmd.env("ALPHANET_CUDA", "emulator");
    }
    cmd.args(args);
    cmd
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Small training settings: one epoch of a 4-unit model on every 4th in-sample date.
const TRAIN: [&str; 12] = [
    "--epochs",
    "1",
    "--hidden",
    "4",
    "--batch",
    "500",
    "--sample-every",
    "4",
    "--threads",
    "1",
    "--to",
    "2016-09-30",
];

fn factor(dir: &Path) -> Vec<f32> {
    NpyArray::<f32>::open(&dir.join("factor.npy"))
        .unwrap()
        .as_slice()
        .to_vec()
}

#[test]
fn every_model_trains_on_cuda_and_its_checkpoint_predicts_the_same_on_cpu_and_cuda() {
    let root = fixture().root.join("models");
    let panel = path(&fixture().panel);
    for (name, model) in [
        ("v1", &["--model", "v1"][..]),
        ("v3", &["--model", "v3"]),
        ("v2.1,v2.2,v2.3", &["--variant", "v2.1,v2.2,v2.3"]),
    ] {
        let ck = root.join(format!("{name}-ck"));
        let t0 = Instant::now();
        let out = ok(
            alphanet(&["train", "--device", "cuda:0", "--panel", panel, "--out"])
                .arg(&ck)
                .args(TRAIN)
                .args(model)
                .output()
                .unwrap(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("device: cuda:0"), "{name}: {stderr}");
        eprintln!(
            "{name}: trained on cuda:0 in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let predict = |device: &str| -> Vec<f32> {
            let dir = root.join(format!("{name}-{}", device.replace(':', "")));
            ok(alphanet(&["predict", "--device", device, "--panel", panel])
                .args(["--from", "2016-10-03", "--to", "2017-03-31", "--checkpoint"])
                .arg(&ck)
                .arg("--out")
                .arg(&dir)
                .output()
                .unwrap());
            factor(&dir)
        };
        let (cpu, gpu) = (predict("cpu"), predict("cuda:0"));
        assert_eq!(cpu.len(), gpu.len());
        let mut compared = 0;
        for (k, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
            assert_eq!(c.is_finite(), g.is_finite(), "{name}: [{k}] {c} vs {g}");
            if c.is_finite() {
                assert!((c - g).abs() <= 1e-4, "{name}: [{k}] cpu {c} vs cuda {g}");
                compared += 1;
            }
        }
        assert!(compared > 1000, "{name}: only {compared} predictions");
    }
}

/// A rolling run of 3 windows × 2 seeds of v2 on the GPU.
fn run_cmd(out: &Path) -> Command {
    let mut cmd = alphanet(&[
        "run",
        "--device",
        "cuda:0",
        "--panel",
        path(&fixture().panel),
    ]);
    cmd.arg("--out").arg(out).args([
        "--variants",
        "v2",
        "--seeds",
        "2",
        "--start",
        "2016-09-01",
        "--retrain-every",
        "3M",
        "--insample-days",
        "200",
        "--sample-every",
        "4",
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--batch",
        "500",
        "--threads",
        "1",
    ]);
    cmd
}

fn factor_bytes(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("factors/v2/factor.npy")).unwrap()
}

fn finished(run: &Path) -> usize {
    std::fs::read_dir(run.join("jobs")).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().join("job.json").is_file())
            .count()
    })
}

#[test]
fn cuda_runs_give_the_same_bits_twice_and_after_a_kill_and_resume() {
    let root: PathBuf = fixture().root.join("runs");
    let (a, b, killed) = (root.join("a"), root.join("b"), root.join("killed"));
    ok(run_cmd(&a).output().unwrap());
    let job: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.join("jobs/v2-w000-s00/job.json")).unwrap(),
    )
    .unwrap();
    let device = job["device"].as_str().unwrap();
    assert!(
        device.starts_with("cuda:0")
            && device.contains("driver CUDA")
            && device.contains("kernels: "),
        "job.json device: {device}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["devices"],
        serde_json::json!([device]),
        "manifest.json devices"
    );
    ok(run_cmd(&b).output().unwrap());
    assert!(factor_bytes(&a) == factor_bytes(&b), "two CUDA runs differ");

    let mut child = run_cmd(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while finished(&killed) < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "no job finished in 600 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = finished(&killed);
    assert!((2..6).contains(&done), "killed after {done} jobs");
    let resumed = ok(run_cmd(&killed).output().unwrap());
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        stdout.contains(&format!("ran {} jobs, skipped {done} finished", 6 - done)),
        "{stdout}"
    );
    assert!(
        factor_bytes(&killed) == factor_bytes(&a),
        "the resumed CUDA run differs from the uninterrupted one"
    );
}

/// The held-out RankIC and the oracle's, as the demo prints them.
fn demo_ics(device: &str, out: &Path) -> (f64, f64) {
    let o = ok(alphanet(&["demo", "--device", device])
        .args(DEMO_MARKET)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap());
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let after = |key: &str| -> f64 {
        let at = text
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
            + key.len();
        text[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (after("held-out RankIC mean "), after("oracle RankIC mean "))
}

/// A smaller demo market than the default (300 stocks × 700 days), which the stand-in trains in
/// about 2 minutes: 150 stocks × 600 days, 6 epochs at lr 5e-4 (the CPU reaches 57% of the
/// oracle with these settings).
const DEMO_MARKET: [&str; 8] = [
    "--stocks", "150", "--days", "600", "--lr", "5e-4", "--epochs", "6",
];

#[test]
fn on_the_demo_market_cuda_learns_as_the_cpu_does() {
    let root = fixture().root.join("demo");
    let (cpu, oracle) = demo_ics("cpu", &root.join("cpu"));
    let (gpu, oracle_gpu) = demo_ics("cuda:0", &root.join("cuda"));
    eprintln!(
        "held-out RankIC: cpu {cpu:.4} ({:.0}% of the oracle), cuda:0 {gpu:.4} ({:.0}%), oracle {oracle:.4}",
        100.0 * cpu / oracle,
        100.0 * gpu / oracle
    );
    assert_eq!(oracle, oracle_gpu, "the two demos saw different markets");
    assert!(
        cpu >= 0.4 * oracle,
        "cpu {cpu} < 40% of the oracle {oracle}"
    );
    assert!(
        gpu >= 0.4 * oracle,
        "cuda {gpu} < 40% of the oracle {oracle}"
    );
}

/// `bench --device cuda:0` counts what a training step at a seen batch shape asks of the driver:
/// no device allocation (the memory pool, docs/engine.md, "Memory"), and on the stand-in, which
/// counts every driver call, no `cuMemAlloc*`/`cuMemFree*` call at all and a launch per kernel.
#[test]
fn bench_counts_no_device_allocation_per_step() {
    let out = ok(alphanet(&[
        "bench", "--device", "cuda:0", "--batch", "64", "--steps", "1", "--warmup", "1", "--json",
    ])
    .output()
    .unwrap());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &report["rows"][0];
    assert_eq!(row["device_allocations_per_step"], 0.0, "{row}");
    let calls = row["driver_calls_per_step"].as_object();
    match emulated() {
        true => {
            let calls = calls.expect("the stand-in counts driver calls");
            let alloc: Vec<&String> = (calls.keys())
                .filter(|k| k.starts_with("cuMemAlloc") || k.starts_with("cuMemFree"))
                .collect();
            assert!(alloc.is_empty(), "allocation calls in a step: {alloc:?}");
            assert!(
                calls["cuLaunchKernel"].as_f64().unwrap() >= 20.0,
                "{calls:?}"
            );
        }
        false => assert!(calls.is_none(), "a real driver's calls are not counted"),
    }
}
