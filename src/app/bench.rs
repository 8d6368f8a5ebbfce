//! `alphanet bench`: training and inference throughput (docs/performance.md) on synthetic batches of the
//! model's real shape, so that the figures are comparable with the peers' (`scripts/`).
//!
//! A training step is what the trainer runs per batch: forward on the tape, the configured loss,
//! backward, the L2 term and Adam. Inference is `Model::predict` (moving BN statistics). Each
//! figure is the median over `steps` timed steps after `warmup` untimed ones, so one-off costs
//! (page faults of fresh buffers, rayon's pool start) and stragglers do not count.
//!
//! `--device cuda:K` runs the same steps, through the same model code, on the GPU; the clock is
//! read once the step's loss has come back (which waits for the step).

use crate::app::args::{init_threads, ModelArgs, NetArgs};
use crate::autograd::adam::AdamConfig;
use crate::cuda::{driver_calls, Backend, DeviceChoice, Gpu, KernelTime};
use crate::data::panel::Panel;
use crate::data::samples::{SampleIndex, HORIZON, PICTURE_DAYS};
use crate::data::synth::{write_synth, SynthConfig};
use crate::device::{Cpu, Device};
use crate::model::{LossConfig, Model, ModelConfig};
use crate::ops::loss::long_side_weights;
use crate::ops::ts_features::OpSet;
use crate::train::split::split_train_val;
use crate::train::step::{train_step_on, Batch};
use crate::train::trainer::{train_on, TrainConfig};
use crate::util::rng::stream;
use crate::{Error, Result};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// The arguments of `alphanet bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchCommand {
    /// Variant(s), as for --variant: v2, v2.1, v2.2, v2.3, v1, v3 (comma list combines).
    #[arg(long, default_value = "v2")]
    pub model: String,
    /// Batch sizes, comma separated.
    #[arg(long, default_value = "1000,4096,16384")]
    pub batch: String,
    /// Feature ops as for training, or `all`, or `peer6` (the TensorFlow peer's six).
    #[arg(long, default_value = "all")]
    pub ops: String,
    /// cpu, auto or cuda[:K] (the default measures the CPU, so figures name their device).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Timed steps per figure (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps before timing.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also time training end to end (`alphanet train`'s loop: batch gathering, steps and
    /// validation) on a synthetic market, for each batch size, beside the step.
    #[arg(long)]
    pub end_to_end: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchCommand {
    pub fn options(&self) -> Result<BenchOptions> {
        Ok(BenchOptions {
            model: self.model.clone(),
            ops: self.ops.clone(),
            batches: parse_batches(&self.batch)?,
            device: self.device.parse()?,
            steps: self.steps,
            warmup: self.warmup,
            seed: self.seed,
            end_to_end: self.end_to_end,
        })
    }

    /// Measures and prints the table (or JSON).
    pub fn run(self) -> Result<()> {
        init_threads(self.threads)?;
        let report = run(&self.options()?)?;
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report)
                    .map_err(|e| Error::Config(format!("bench: {e}")))?
            );
        } else {
            print!("{}", render(&report));
        }
        Ok(())
    }
}

/// Rows per date group of the synthetic batches: v2.2 regresses within each group, as within
/// one date (a date larger than the batch is cut into chunks of about the batch size).
const DATE_GROUP: usize = 1000;
/// Style exposures per sample (size, beta, volatility, as in the synthetic panel).
const STYLES: usize = 3;
/// GPU training steps run with per-kernel timing, after the timed ones.
const KERNEL_TIMING_STEPS: usize = 3;
/// Steps whose device allocations and driver calls `bench` counts, on a GPU.
const COUNTED_STEPS: usize = 2;

pub struct BenchOptions {
    /// Variant list as for `--variant` (`v2`, `v2.1`, `v2.1,v2.3`, `v1`, `v3`, …).
    pub model: String,
    /// Feature ops, as for `--ops`.
    pub ops: String,
    pub batches: Vec<usize>,
    pub device: DeviceChoice,
    pub steps: usize,
    pub warmup: usize,
    pub seed: u64,
    /// Also time the training loop end to end ([`end_to_end`]).
    pub end_to_end: bool,
}

/// One (model, batch size) measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub model: String,
    pub ops: String,
    pub channels: usize,
    pub batch: usize,
    pub steps: usize,
    /// Median seconds of one training step (forward + backward + Adam).
    pub train_step_s: f64,
    pub train_samples_per_s: f64,
    /// Median seconds of one inference pass.
    pub infer_step_s: f64,
    pub infer_samples_per_s: f64,
    /// GPU only: a training step that also uploads its batch from host memory (the figure above
    /// trains on a batch already on the device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_host_batch_step_s: Option<f64>,
    /// GPU only: each kernel's time in one training step (`ms` per step, `launches` over
    /// KERNEL_TIMING_STEPS steps), from CUDA events around every launch, largest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<KernelTime>,
    /// GPU only: device allocations per training step at a batch shape already trained on (the
    /// memory pool's count; 0 when every buffer is reused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_allocations_per_step: Option<f64>,
    /// On the CPU stand-in of the driver only (which counts them): driver calls per training
    /// step by entry point, in the same steps.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_calls_per_step: BTreeMap<String, f64>,
    /// With `--end-to-end`: training samples per second of the whole training loop (batch
    /// gathering and validation included), median over the epochs after the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_end_to_end_samples_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// CPU model name (from /proc/cpuinfo where available).
    pub machine: String,
    /// Logical cores the OS reports.
    pub cores: usize,
    /// Worker threads of the rayon pool the ops ran on.
    pub threads: usize,
    pub device: String,
    pub rows: Vec<BenchRow>,
}

/// Runs every batch size of `opts` and returns the measurements.
pub fn run(opts: &BenchOptions) -> Result<BenchReport> {
    if opts.steps == 0 || opts.batches.is_empty() || opts.batches.contains(&0) {
        return Err(Error::Config(
            "--steps and every --batch size must be at least 1".into(),
        ));
    }
    let (cfg, loss) = model_configs(&opts.model, &opts.ops, opts.seed)?;
    let backend = Backend::open(opts.device)?;
    let gpu = match &backend {
        Backend::Cuda(gpu) => Some(&**gpu),
        Backend::Cpu => None,
    };
    let mut rows = Vec::with_capacity(opts.batches.len());
    for &b in &opts.batches {
        let mut row = bench_one(opts, &cfg, &loss, b, gpu)?;
        if opts.end_to_end {
            row.train_end_to_end_samples_per_s =
                Some(end_to_end(&backend, &cfg, &loss, b, opts.seed)?);
        }
        rows.push(row);
    }
    Ok(BenchReport {
        machine: cpu_name(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: rayon::current_num_threads(),
        device: backend.describe(),
        rows,
    })
}

/// The model and loss of a `--model` variant list and `--ops` value (defaults otherwise).
pub fn model_configs(model: &str, ops: &str, seed: u64) -> Result<(ModelConfig, LossConfig)> {
    ModelArgs {
        variant: model.to_string(),
        model: None,
        pair_sample: None,
        neutralize_loss: false,
        long_weight: None,
        net: NetArgs {
            ops: expand_ops(ops),
            dropout: 0.0,
            hidden: 30,
            input_norm: Default::default(),
        },
    }
    .configs(seed)
}

/// One row, on the GPU when one is given, else on the CPU: the same model code on either.
fn bench_one(
    opts: &BenchOptions,
    cfg: &ModelConfig,
    loss: &LossConfig,
    b: usize,
    gpu: Option<&Gpu>,
) -> Result<BenchRow> {
    let model = Model::<f32>::new(cfg)?;
    let batch = synthetic_batch(cfg, b, opts.seed);
    let mut row = BenchRow {
        model: opts.model.clone(),
        ops: cfg.ops.to_string(),
        channels: model.specs[0].channels(),
        batch: b,
        steps: opts.steps,
        train_step_s: 0.0,
        train_samples_per_s: 0.0,
        infer_step_s: 0.0,
        infer_samples_per_s: 0.0,
        train_host_batch_step_s: None,
        kernels: vec![],
        device_allocations_per_step: None,
        driver_calls_per_step: BTreeMap::new(),
        train_end_to_end_samples_per_s: None,
    };
    let (train, infer) = match gpu {
        None => {
            let r = bench_on(&Cpu::new(), opts, &model, &batch, loss, false)?;
            (r.0, r.1)
        }
        Some(gpu) => {
            let r = bench_on(gpu, opts, &model, &batch, loss, true)?;
            row.train_host_batch_step_s = r.2;
            // Kernel times from CUDA events, in extra steps so the events do not slow the above;
            // then the driver's work per step, counted in steps without the events.
            let mut net = model.to_device(gpu)?;
            let on_device = gpu.batch(&batch, Device::upload(gpu, &batch.x)?)?;
            let mut step = 0;
            let mut steps = |n: usize| -> Result<()> {
                for _ in 0..n {
                    train_step_on(
                        gpu,
                        &mut net,
                        &on_device,
                        loss,
                        &AdamConfig::default(),
                        step,
                    )?;
                    step += 1;
                }
                Ok(())
            };
            gpu.timer.start();
            steps(KERNEL_TIMING_STEPS)?;
            row.kernels = gpu.timer.take()?;
            for k in &mut row.kernels {
                k.ms /= KERNEL_TIMING_STEPS as f64;
            }
            let (pool, calls) = (gpu.pool_stats(), driver_calls());
            steps(COUNTED_STEPS)?;
            let (pool_after, calls_after) = (gpu.pool_stats(), driver_calls());
            let per_step = |before: u64, after: u64| (after - before) as f64 / COUNTED_STEPS as f64;
            row.device_allocations_per_step = Some(per_step(pool.allocated, pool_after.allocated));
            if let (Some(before), Some(after)) = (calls, calls_after) {
                // The stand-in's pool fills each reused block with NaN (one memset), which a GPU
                // does not: those memsets are listed apart.
                let poison = per_step(pool.reused, pool_after.reused);
                row.driver_calls_per_step = (after.into_iter())
                    .map(|(name, n)| {
                        let d = per_step(before.get(&name).copied().unwrap_or(0), n);
                        match name == "cuMemsetD8Async" {
                            true => (name, d - poison),
                            false => (name, d),
                        }
                    })
                    .chain([(STAND_IN_POISON.to_string(), poison)])
                    .filter(|&(_, d)| d > 0.0)
                    .collect();
            }
            (r.0, r.1)
        }
    };
    row.train_step_s = train;
    row.train_samples_per_s = b as f64 / train;
    row.infer_step_s = infer;
    row.infer_samples_per_s = b as f64 / infer;
    Ok(row)
}

/// The memsets of the stand-in's pool that a GPU does not make, listed apart.
const STAND_IN_POISON: &str = "stand-in poison memsets";

/// Stocks of the synthetic market [`end_to_end`] trains on.
const E2E_STOCKS: usize = 500;
/// Training batches per epoch it aims at, and its epochs (the first one is not counted).
const E2E_BATCHES: usize = 12;
const E2E_EPOCHS: usize = 3;

/// Training samples per second of the trainer's whole loop ([`train_on`]: batches of whole dates
/// gathered from the panel, steps, validation every epoch) at batch size `b`, on a synthetic
/// market of [`E2E_STOCKS`] stocks with about [`E2E_BATCHES`] training batches (purged 4:1
/// split, every date): the median of the epochs after the first.
fn end_to_end(
    backend: &Backend,
    cfg: &ModelConfig,
    loss: &LossConfig,
    b: usize,
    seed: u64,
) -> Result<f64> {
    let train_dates = (E2E_BATCHES * b).div_ceil(E2E_STOCKS);
    let synth = SynthConfig {
        stocks: E2E_STOCKS,
        days: (PICTURE_DAYS + HORIZON + train_dates * 5 / 4 + 2).max(100),
        seed,
    };
    let dir = std::env::temp_dir().join(format!("alphanet-bench-{}-{b}", std::process::id()));
    write_synth(&synth, &dir)?;
    let fitted = (|| {
        let panel = Panel::open(&dir)?;
        let (tr, va) = split_train_val(PICTURE_DAYS - 1, panel.n_dates() - HORIZON, 4, 1)?;
        let (tr, va) = (
            SampleIndex::build(panel.view(), tr, 1)?,
            SampleIndex::build(panel.view(), va, 1)?,
        );
        let train_cfg = TrainConfig {
            epochs: E2E_EPOCHS,
            patience: E2E_EPOCHS,
            batch_size: b,
            seed,
            ..TrainConfig::default()
        };
        match backend {
            Backend::Cpu => train_on(&Cpu::new(), &panel, cfg, loss, &train_cfg, &tr, &va, false),
            Backend::Cuda(gpu) => train_on(&**gpu, &panel, cfg, loss, &train_cfg, &tr, &va, false),
        }
    })();
    // The panel is scratch: removed whether training worked or not.
    let _ = std::fs::remove_dir_all(&dir);
    let mut rates: Vec<f64> = (fitted?.1.epochs.iter().skip(1))
        .map(|e| e.samples_per_s)
        .collect();
    rates.sort_by(f64::total_cmp);
    rates
        .get(rates.len() / 2)
        .copied()
        .ok_or_else(|| Error::Config("bench --end-to-end: training stopped after one epoch".into()))
}

/// (training step, inference pass, training step with the batch uploaded from the host (when
/// `host_batch`, for a GPU), kernel times) in seconds, medians over the timed steps. The training batch is put on
/// the device once and stays there, as the trainer's data does; the clock is read after the
/// device has finished ([`Device::read`] of the loss waits for the step).
fn bench_on<D: Device<T = f32>>(
    dev: &D,
    opts: &BenchOptions,
    model: &Model<f32>,
    batch: &Batch<f32>,
    loss: &LossConfig,
    host_batch: bool,
) -> Result<(f64, f64, Option<f64>)> {
    let adam = AdamConfig::default();
    let mut net = model.to_device(dev)?;
    let on_device = dev.batch(batch, dev.upload(&batch.x)?)?;
    let host_batch = if host_batch {
        Some(median_seconds(opts.warmup, opts.steps, |step| {
            let b = dev.batch(batch, dev.upload(&batch.x)?)?;
            train_step_on(dev, &mut net, &b, loss, &adam, step as u64).map(drop)
        })?)
    } else {
        None
    };
    let train = median_seconds(opts.warmup, opts.steps, |step| {
        train_step_on(dev, &mut net, &on_device, loss, &adam, step as u64).map(drop)
    })?;
    // The predictions come back to the host: the pass has finished when it returns.
    let infer = median_seconds(opts.warmup, opts.steps, |_| {
        std::hint::black_box(net.predict_on(dev, &on_device.x, batch.len())?);
        Ok(())
    })?;
    Ok((train, infer, host_batch))
}

/// A batch like the peer's: pictures `N(0,1) + 3` (positive, so return is smooth), labels
/// `N(0,1)`, v2.3 weights 2 for the top half of each date group of [`DATE_GROUP`] rows, styles
/// `N(0,1)`.
pub fn synthetic_batch(cfg: &ModelConfig, b: usize, seed: u64) -> Batch<f32> {
    let mut rng = stream(seed, "bench-batch");
    let mut normal = |n: usize, shift: f32| -> Vec<f32> {
        (0..n)
            .map(|_| StandardNormal.sample(&mut rng))
            .map(|v: f32| v + shift)
            .collect()
    };
    let x = normal(b * cfg.n_features * cfg.days, 3.0);
    let y = normal(b, 0.0);
    let styles = normal(b * STYLES, 0.0);
    let offsets: Vec<usize> = (0..b)
        .step_by(DATE_GROUP)
        .chain(std::iter::once(b))
        .collect();
    let w: Vec<f32> = offsets
        .windows(2)
        .flat_map(|g| long_side_weights(&y[g[0]..g[1]], 2.0))
        .collect();
    Batch {
        x,
        y,
        w,
        styles,
        k: STYLES,
        offsets,
    }
}

/// Runs `f(i)` `warmup` times untimed, then `steps` times timed; returns the median seconds.
fn median_seconds(
    warmup: usize,
    steps: usize,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<f64> {
    for i in 0..warmup {
        f(i)?;
    }
    let mut t = Vec::with_capacity(steps);
    for i in 0..steps {
        let t0 = Instant::now();
        f(warmup + i)?;
        t.push(t0.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    let m = t.len() / 2;
    Ok(if t.len() % 2 == 1 {
        t[m]
    } else {
        0.5 * (t[m - 1] + t[m])
    })
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The human-readable table.
pub fn render(r: &BenchReport) -> String {
    let mut s = format!(
        "machine: {} ({} cores), threads: {}, device: {}\n{:<10} {:>8} {:>7} {:>12} {:>14} {:>12} {:>14}\n",
        r.machine,
        r.cores,
        r.threads,
        r.device,
        "model",
        "channels",
        "batch",
        "train ms",
        "train smp/s",
        "infer ms",
        "infer smp/s"
    );
    for row in &r.rows {
        s += &format!(
            "{:<10} {:>8} {:>7} {:>12.3} {:>14.0} {:>12.3} {:>14.0}\n",
            row.model,
            row.channels,
            row.batch,
            1e3 * row.train_step_s,
            row.train_samples_per_s,
            1e3 * row.infer_step_s,
            row.infer_samples_per_s
        );
    }
    let host: Vec<String> = (r.rows.iter())
        .filter_map(|row| {
            let t = row.train_host_batch_step_s?;
            Some(format!("batch {}: {:.3} ms", row.batch, 1e3 * t))
        })
        .collect();
    if !host.is_empty() {
        s += &format!(
            "training batches on the device; with a host batch uploaded every step: {}\n",
            host.join(", ")
        );
        if r.rows
            .iter()
            .any(|row| !row.driver_calls_per_step.is_empty())
        {
            s += "  (on the CPU stand-in an upload is a plain memcpy and its kernels run at the \
                  stand-in's own speed, so these two timings do not rank the paths; on a GPU the \
                  device-resident batch saves one host-to-device copy per step)\n";
        }
    }
    let e2e: Vec<String> = (r.rows.iter())
        .filter_map(|row| {
            let v = row.train_end_to_end_samples_per_s?;
            Some(format!(
                "batch {}: {v:.0} samples/s ({:.0}% of the step)",
                row.batch,
                100.0 * v / row.train_samples_per_s
            ))
        })
        .collect();
    if !e2e.is_empty() {
        s += &format!(
            "end to end (the training loop on a synthetic market: gathering, steps, validation): {}\n",
            e2e.join(", ")
        );
    }
    for row in &r.rows {
        if let Some(a) = row.device_allocations_per_step {
            s += &format!(
                "batch {}: {a} device allocations per training step",
                row.batch
            );
            if !row.driver_calls_per_step.is_empty() {
                let calls: Vec<String> = (row.driver_calls_per_step.iter())
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect();
                s += &format!(
                    "; driver calls per step (the stand-in's count): {}",
                    calls.join(", ")
                );
                if row
                    .driver_calls_per_step
                    .iter()
                    .any(|(name, _)| name == STAND_IN_POISON)
                {
                    s += &format!(
                        " ({STAND_IN_POISON}: the stand-in fills every reused pool block with NaN \
                         so that a kernel reading memory it did not write shows up in the \
                         cross-checks; a GPU makes no such call)"
                    );
                }
            }
            s += "\n";
        }
    }
    for row in r.rows.iter().filter(|row| !row.kernels.is_empty()) {
        let total: f64 = row.kernels.iter().map(|k| k.ms).sum();
        s += &format!(
            "\nkernels of one training step, batch {} (CUDA events, mean of {KERNEL_TIMING_STEPS} steps): {total:.3} ms\n{:<30} {:>9} {:>9} {:>6}\n",
            row.batch, "kernel", "launches", "ms", "share"
        );
        for k in &row.kernels {
            s += &format!(
                "{:<30} {:>9.1} {:>9.3} {:>5.1}%\n",
                k.name,
                k.launches as f64 / KERNEL_TIMING_STEPS as f64,
                k.ms,
                100.0 * k.ms / total
            );
        }
    }
    s
}

/// `--ops` as for training, plus the names `all` and `peer6` (the six ops of the public Python
/// package, the set the TensorFlow peer computes).
fn expand_ops(ops: &str) -> String {
    match ops.trim().to_ascii_lowercase().as_str() {
        "all" => OpSet::ALL.to_string(),
        "peer6" => OpSet::PEER6.to_string(),
        _ => ops.to_string(),
    }
}

/// Parses `--batch 1000,4096,16384`.
pub fn parse_batches(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    Error::Config(format!(
                    "--batch {s}: expected positive integers separated by commas, e.g. 1000,4096"
                ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(model: &str, device: &str) -> BenchOptions {
        BenchOptions {
            model: model.into(),
            ops: "all".into(),
            batches: vec![10],
            device: device.parse().unwrap(),
            steps: 1,
            warmup: 0,
            seed: 0,
            end_to_end: false,
        }
    }

    #[test]
    fn end_to_end_trains_on_a_synthetic_market() {
        let mut o = opts("v2", "cpu");
        o.batches = vec![300];
        o.end_to_end = true;
        let r = run(&o).unwrap();
        let v = r.rows[0].train_end_to_end_samples_per_s.unwrap();
        assert!(v.is_finite() && v > 0.0, "{v}");
        assert!(render(&r).contains("end to end"), "{}", render(&r));
    }

    #[test]
    fn unusable_cuda_fails_clearly() {
        // No machine has a GPU 99: the reason is the probe's, whether or not a GPU is present.
        let e = run(&opts("v2", "cuda:99")).unwrap_err().to_string();
        assert!(e.contains("--device cuda:99 cannot be used"), "{e}");
        let e = run(&opts("v3", "cuda:99")).unwrap_err().to_string();
        assert!(e.contains("--device cuda:99 cannot be used"), "{e}");
    }
}
