//! The input pictures: their normalization and their gather from the panel.

use crate::common::gpu::{Out, ELEMENT, EXACT};
use crate::common::uniform;
use crate::{down, up};
use alphanet::cuda::Gpu;
use alphanet::data::panel::PanelView;
use alphanet::data::samples::{gather_pictures, PICTURE_LEN};
use alphanet::util::rng::Rng;
use alphanet::Result;
use rand::Rng as _;

/// Pictures with prices ~10, volume-like series ~1e6 and one all-zero series (its mean 0).
pub(crate) fn normalize(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let b = 23;
    let mut x = uniform(r, b * PICTURE_LEN, 0.5, 2.0);
    for (k, v) in x.iter_mut().enumerate() {
        match (k % PICTURE_LEN) / 30 {
            1..=4 | 6 => *v *= 10.0,
            5 | 7 => *v *= 1e6,
            _ => {}
        }
    }
    x[3 * PICTURE_LEN + 11 * 30..3 * PICTURE_LEN + 12 * 30].fill(0.0);
    let mut out = vec![0.0; x.len()];
    alphanet::ops::normalize::normalize_pictures(&mut out, &x, b);
    let mut outd = gpu.zeros(x.len())?;
    gpu.normalize_pictures(&mut outd, &*up(gpu, &x)?, b)?;
    Ok(vec![Out::new("out", down(gpu, &outd)?, &out, ELEMENT)])
}

pub(crate) fn gather(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let (n_dates, n_stocks, b) = (45, 17, 60);
    let features = uniform(r, n_dates * n_stocks * 15, -1.0, 1.0);
    let samples: Vec<(u32, u32)> = (0..b)
        .map(|_| {
            (
                r.gen_range(29..n_dates as u32),
                r.gen_range(0..n_stocks as u32),
            )
        })
        .collect();
    let view = PanelView {
        n_dates,
        n_stocks,
        n_styles: 0,
        n_price_fields: 0,
        vwap_field: 0,
        dates: &[],
        features: &features,
        price: &[],
        tradable: &[],
        styles: &[],
        industry: &[],
        size: &[],
    };
    let mut out = vec![0.0; b * PICTURE_LEN];
    gather_pictures(view, &samples, &mut out);
    let flat: Vec<u32> = samples.iter().flat_map(|&(t, i)| [t, i]).collect();
    let mut outd = gpu.zeros(b * PICTURE_LEN)?;
    gpu.gather_pictures(
        &*up(gpu, &features)?,
        n_stocks,
        &*gpu.upload(&flat)?,
        &mut outd,
    )?;
    Ok(vec![Out::new("pictures", down(gpu, &outd)?, &out, EXACT)])
}
