//! The panel's pictures on the GPU ([`Pictures`]): the features of a span of dates uploaded once,
//! pictures cut from them by a kernel.

use super::context::Gpu;
use super::pool::Owned;
use crate::data::panel::Panel;
use crate::data::pictures::Pictures;
use crate::data::samples::{N_FEATURES, PICTURE_DAYS};
use crate::error::{Error, Result};
use std::ops::Range;

/// The panel's features `[T', N, 15]` on the device for dates `first..`, where pictures are cut.
pub struct Source {
    features: Owned,
    first: usize,
    n_stocks: usize,
}

impl Pictures for Gpu {
    type Source = Source;

    fn source(&self, panel: &Panel, dates: Range<usize>) -> Result<Source> {
        let first = dates.start.saturating_sub(PICTURE_DAYS - 1);
        let row = panel.n_stocks() * N_FEATURES;
        let features = &panel.view().features[first * row..dates.end * row];
        Ok(Source {
            features: self.upload(features)?,
            first,
            n_stocks: panel.n_stocks(),
        })
    }

    fn gather_pictures(
        &self,
        src: &Source,
        panel: &Panel,
        samples: &[(u32, u32)],
    ) -> Result<Owned> {
        let dates = src.features.len() / (src.n_stocks * N_FEATURES);
        let mut flat = Vec::with_capacity(2 * samples.len());
        for &(t, i) in samples {
            let t = t as usize;
            if t < src.first + PICTURE_DAYS - 1
                || t >= src.first + dates
                || i as usize >= src.n_stocks
            {
                return Err(Error::Data(format!(
                    "sample (date {t}, stock {i}) lies outside the dates uploaded from panel {} ({} .. {})",
                    panel.dir().display(),
                    src.first + PICTURE_DAYS - 1,
                    src.first + dates
                )));
            }
            flat.extend([(t - src.first) as u32, i]);
        }
        let mut out = Gpu::scratch(self, samples.len() * N_FEATURES * PICTURE_DAYS)?;
        if samples.is_empty() {
            return Ok(out);
        }
        let samples = Gpu::upload(self, &flat)?;
        Gpu::gather_pictures(self, &src.features, src.n_stocks, &samples, &mut out)?;
        Ok(out)
    }
}
