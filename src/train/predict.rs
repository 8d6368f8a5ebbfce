//! Prediction: the factor `[T, N]` of a trained model over a date range of a panel, and its
//! `.npy` + long CSV outputs.

use crate::cuda::Backend;
use crate::data::npy::write_npy;
use crate::data::panel::{flags, Panel};
use crate::data::samples::{gather_pictures, N_FEATURES, PICTURE_DAYS};
use crate::device::{Cpu, Device};
use crate::model::{LossConfig, Model};
use crate::ops::loss::project_out;
use crate::{Error, Result};
use std::io::Write;
use std::ops::Range;
use std::path::Path;

/// What a model's factor is (docs/models.md#v22-neutralized-loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// ŷ as the network outputs it.
    Raw,
    /// `ŷ_res = ŷ − S(SᵀS + λI)⁻¹Sᵀŷ` per date, `S = [1, styles]` over the date's predicted
    /// stocks: the part of ŷ that the v2.2 loss trains. Its style part gets no gradient and drifts.
    StyleResidual,
}

impl Output {
    /// The factor of a model trained with `loss`: the style residual for the v2.2 loss.
    pub fn of(loss: &LossConfig) -> Output {
        if loss.neutralize {
            Output::StyleResidual
        } else {
            Output::Raw
        }
    }
}

/// Predictions for every (date in `dates`, stock) that is listed, not suspended and has a fully
/// finite picture; NaN elsewhere. Returned as `[T, N]` over the whole panel.
pub fn predict_factor(
    backend: &Backend,
    panel: &Panel,
    model: &Model<f32>,
    dates: Range<usize>,
    batch_size: usize,
    output: Output,
) -> Result<Vec<f32>> {
    let mut factor = match backend {
        Backend::Cpu => predict_on(&Cpu::new(), panel, model, dates.clone(), batch_size),
        Backend::Cuda(gpu) => predict_on(&**gpu, panel, model, dates.clone(), batch_size),
    }?;
    if output == Output::StyleResidual {
        style_residual(&mut factor, panel, dates);
    }
    Ok(factor)
}

/// Replaces each date's finite values of `factor` (`[T, N]`) by their residual on `[1, styles]`
/// as the v2.2 loss computes it ([`project_out`], a non-finite exposure counting as 0). A date
/// with fewer than `2(K + 1)` values is left as it is, as the loss leaves such a group.
pub fn style_residual(factor: &mut [f32], panel: &Panel, dates: Range<usize>) {
    let p = panel.view();
    let (n, k) = (p.n_stocks, p.n_styles);
    if k == 0 {
        return;
    }
    for t in dates {
        let row = &mut factor[t * n..(t + 1) * n];
        let stocks: Vec<usize> = (0..n).filter(|&i| row[i].is_finite()).collect();
        if stocks.len() < 2 * (k + 1) {
            continue;
        }
        let mut v: Vec<f64> = stocks.iter().map(|&i| f64::from(row[i])).collect();
        let s: Vec<f64> = stocks
            .iter()
            .flat_map(|&i| &p.styles[(t * n + i) * k..(t * n + i + 1) * k])
            .map(|&x| f64::from(x))
            .collect();
        project_out(&mut v, &s, k);
        for (&i, r) in stocks.iter().zip(v) {
            row[i] = r as f32;
        }
    }
}

/// [`predict_factor`] on device `dev`: pictures gathered and filtered on the host, as on the CPU,
/// then predicted on the device.
pub fn predict_on<D: Device<T = f32>>(
    dev: &D,
    panel: &Panel,
    model: &Model<f32>,
    dates: Range<usize>,
    batch_size: usize,
) -> Result<Vec<f32>> {
    let (t_all, n) = (panel.n_dates(), panel.n_stocks());
    let d = &panel.meta().dates;
    if t_all < PICTURE_DAYS {
        return Err(Error::Data(format!(
            "panel {} has {t_all} dates; one 30-day picture needs {PICTURE_DAYS}",
            panel.dir().display()
        )));
    }
    let (first, last) = (&d[PICTURE_DAYS - 1], &d[t_all - 1]);
    let why = if dates.is_empty() {
        Some("the range is empty".to_string())
    } else if dates.start < PICTURE_DAYS - 1 {
        Some(format!(
            "it starts on {}, before the first full 30-day picture; choose --from on or after {first}",
            d[dates.start]
        ))
    } else if dates.end > t_all {
        Some(format!(
            "it ends {} dates after the panel's last date; choose --to on or before {last}",
            dates.end - t_all
        ))
    } else {
        None
    };
    if let Some(why) = why {
        return Err(Error::Data(format!(
            "cannot predict on panel {} there: {why} (the panel predicts {first} .. {last}; its \
             first {} dates only fill the first picture)",
            panel.dir().display(),
            PICTURE_DAYS - 1
        )));
    }
    let mut net = model.to_device(dev)?;
    let mut factor = vec![f32::NAN; t_all * n];
    let tradable = panel.tradable();
    let mut pending: Vec<(u32, u32)> = Vec::new();
    let picture = N_FEATURES * PICTURE_DAYS;
    let mut flush = |pending: &mut Vec<(u32, u32)>, factor: &mut Vec<f32>| -> Result<()> {
        let mut x = vec![0.0f32; pending.len() * picture];
        gather_pictures(panel.view(), pending, &mut x);
        let keep: Vec<usize> = (0..pending.len())
            .filter(|&k| {
                x[k * picture..(k + 1) * picture]
                    .iter()
                    .all(|v| v.is_finite())
            })
            .collect();
        let mut xs = Vec::with_capacity(keep.len() * picture);
        for &k in &keep {
            xs.extend_from_slice(&x[k * picture..(k + 1) * picture]);
        }
        let pred = if keep.is_empty() {
            vec![]
        } else {
            net.predict_on(dev, &dev.upload(&xs)?, keep.len())?
        };
        for (&k, p) in keep.iter().zip(pred) {
            let (t, i) = pending[k];
            factor[t as usize * n + i as usize] = p;
        }
        pending.clear();
        Ok(())
    };
    for t in dates {
        for i in 0..n {
            let f = tradable[t * n + i];
            if f & flags::LISTED != 0 && f & flags::SUSPENDED == 0 {
                pending.push((t as u32, i as u32));
            }
        }
        if pending.len() >= batch_size {
            flush(&mut pending, &mut factor)?;
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut factor)?;
    }
    Ok(factor)
}

/// Writes `DIR/factor.npy` (`[T', N]` for the dates in `dates`) and `DIR/factor.csv`
/// (`date,code,factor`, finite values only). `dir` must exist.
pub fn write_factor(dir: &Path, panel: &Panel, factor: &[f32], dates: Range<usize>) -> Result<()> {
    let n = panel.n_stocks();
    let slice = &factor[dates.start * n..dates.end * n];
    write_npy(&dir.join("factor.npy"), &[dates.len(), n], slice)?;
    let csv_path = dir.join("factor.csv");
    let file = std::fs::File::create(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
    let mut w = std::io::BufWriter::new(file);
    let meta = panel.meta();
    let mut write = || -> std::io::Result<()> {
        writeln!(w, "date,code,factor")?;
        for t in dates.clone() {
            for i in 0..n {
                let v = factor[t * n + i];
                if v.is_finite() {
                    writeln!(w, "{},{},{v}", meta.dates[t], meta.codes[i])?;
                }
            }
        }
        w.flush()
    };
    write().map_err(|e| Error::io(&csv_path, e))
}
