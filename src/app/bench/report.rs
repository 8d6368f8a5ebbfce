//! What `bench` reports: one [`BenchRow`] per (model, batch size), the [`BenchReport`] around
//! them (printed as JSON with `--json`), and [`render`], the human-readable table.

use crate::cuda::KernelTime;
use serde::Serialize;
use std::collections::BTreeMap;

/// GPU training steps run with per-kernel timing, after the timed ones.
pub(super) const KERNEL_TIMING_STEPS: usize = 3;

/// The memsets of the stand-in's pool that a GPU does not make, listed apart.
pub(super) const STAND_IN_POISON: &str = "stand-in poison memsets";

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
