//! `bench --end-to-end`: the trainer's whole loop timed on a synthetic market, to show how much
//! of the step's throughput batch gathering and validation leave.

use crate::cuda::Backend;
use crate::data::panel::Panel;
use crate::data::samples::{SampleIndex, HORIZON, PICTURE_DAYS};
use crate::data::synth::{write_synth, SynthConfig};
use crate::device::Cpu;
use crate::model::{LossConfig, ModelConfig};
use crate::train::split::split_train_val;
use crate::train::trainer::{train_on, TrainConfig};
use crate::{Error, Result};

/// Stocks of the synthetic market [`end_to_end`] trains on.
const E2E_STOCKS: usize = 500;
/// Training batches per epoch it aims at, and its epochs (the first one is not counted).
const E2E_BATCHES: usize = 12;
const E2E_EPOCHS: usize = 3;

/// Training samples per second of the trainer's whole loop ([`train_on`]: batches of whole dates
/// gathered from the panel, steps, validation every epoch) at batch size `b`, on a synthetic
/// market of [`E2E_STOCKS`] stocks with about [`E2E_BATCHES`] training batches (purged 4:1
/// split, every date): the median of the epochs after the first.
pub(super) fn end_to_end(
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
