//! The held-out RankIC of a trained model, for `demo` and `predict --eval`.

use crate::cuda::Backend;
use crate::data::panel::Panel;
use crate::data::samples::{raw_labels, SampleIndex};
use crate::eval::ic::{rank_ic_series, IcSummary};
use crate::model::Model;
use crate::train::predict::{predict_factor, Output};
use crate::Result;
use std::ops::Range;

/// Held-out evaluation of a factor on `dates`: RankIC every `every` dates over the universe.
pub struct HeldOut {
    pub factor: Vec<f32>,
    pub ic: IcSummary,
    /// The planted signal's RankIC on the same dates, where the panel has one (synthetic).
    pub oracle: Option<(IcSummary, Vec<(usize, f64)>)>,
    /// (date index, RankIC) of the factor.
    pub series: Vec<(usize, f64)>,
}

pub fn held_out(
    backend: &Backend,
    panel: &Panel,
    model: &Model<f32>,
    dates: Range<usize>,
    every: usize,
    batch: usize,
    output: Output,
) -> Result<HeldOut> {
    let factor = predict_factor(backend, panel, model, dates.clone(), batch, output)?;
    let index = SampleIndex::build(panel.view(), dates, 1)?;
    let labels = raw_labels(panel.view());
    let n = panel.n_stocks();
    let summarize = |f: &[f32]| {
        let s = rank_ic_series(f, &labels, n, &index, every);
        (IcSummary::of(&s.iter().map(|p| p.1).collect::<Vec<_>>()), s)
    };
    let (ic, series) = summarize(&factor);
    let oracle = panel.oracle().map(summarize);
    Ok(HeldOut {
        factor,
        ic,
        oracle,
        series,
    })
}
