//! The measurements: for each batch size, the model's training step and inference pass timed on
//! a synthetic batch of its real shape (on the CPU or a GPU, through the same model code), plus
//! on a GPU the per-kernel times and the driver's work per step.

use super::end_to_end::end_to_end;
use super::report::{BenchReport, BenchRow, KERNEL_TIMING_STEPS, STAND_IN_POISON};
use crate::app::args::{ModelArgs, NetArgs};
use crate::autograd::adam::AdamConfig;
use crate::cuda::{driver_calls, Backend, DeviceChoice, Gpu};
use crate::device::{Cpu, Device};
use crate::model::{LossConfig, Model, ModelConfig};
use crate::ops::elementwise::Activation;
use crate::ops::loss::long_side_weights;
use crate::ops::ts_features::OpSet;
use crate::train::step::{train_step_on, Batch};
use crate::util::rng::stream;
use crate::{Error, Result};
use rand_distr::{Distribution, StandardNormal};
use std::collections::BTreeMap;
use std::time::Instant;

/// Rows per date group of the synthetic batches: v2.2 regresses within each group, as within
/// one date (a date larger than the batch is cut into chunks of about the batch size).
const DATE_GROUP: usize = 1000;
/// Style exposures per sample (size, beta, volatility, as in the synthetic panel).
const STYLES: usize = 3;
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
            activation: Activation::default().name().into(),
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

/// `--ops` as for training, plus the names `all` and `peer6` (the six ops of the public Python
/// package, the set the TensorFlow peer computes).
fn expand_ops(ops: &str) -> String {
    match ops.trim().to_ascii_lowercase().as_str() {
        "all" => OpSet::ALL.to_string(),
        "peer6" => OpSet::PEER6.to_string(),
        _ => ops.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::bench::render;

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
