//! The panel's pictures on a device: the span of features pictures are cut from, and the cut.
//! A data-side extension of [`Device`], so that the device layer knows buffers and ops and
//! nothing of panels; the trainer asks for `D: Device + Pictures`.

use super::panel::Panel;
use super::samples::{gather_pictures, N_FEATURES, PICTURE_DAYS};
use crate::device::{Cpu, Device};
use crate::util::float::Float;
use crate::Result;
use std::ops::Range;

pub trait Pictures: Device {
    /// The panel's feature tensor for a span of dates, where pictures are cut from.
    type Source;
    /// The dates `dates` (and the 29 before, the first picture's history) of the panel's features.
    fn source(&self, panel: &Panel, dates: Range<usize>) -> Result<Self::Source>;
    /// Pictures `[B, 15, 30]` of (date, stock) pairs, dates inside the source's span.
    fn gather_pictures(
        &self,
        src: &Self::Source,
        panel: &Panel,
        samples: &[(u32, u32)],
    ) -> Result<Self::Buf>;
}

impl<T: Float> Pictures for Cpu<T> {
    type Source = ();

    /// The panel is memory-mapped: pictures are cut from it directly.
    fn source(&self, _panel: &Panel, _dates: Range<usize>) -> Result<()> {
        Ok(())
    }

    fn gather_pictures(&self, _src: &(), panel: &Panel, samples: &[(u32, u32)]) -> Result<Vec<T>> {
        let mut x = vec![T::zero(); samples.len() * N_FEATURES * PICTURE_DAYS];
        gather_pictures(panel.view(), samples, &mut x);
        Ok(x)
    }
}
