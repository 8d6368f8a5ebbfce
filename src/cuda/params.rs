//! A model's parameters on the GPU: values, gradients and Adam's moments are one flat device
//! buffer each ([`GpuParams`]); a tensor is a view into them, so Adam is one launch and a
//! checkpoint one download per buffer.

use std::mem::ManuallyDrop;
use std::ops::Range;

use cudarc::driver::DevicePtr;

use super::context::Gpu;
use super::pool::{Buf, Owned};
use crate::autograd::params::{ParamEntry, ParamId};
use crate::device::Params;

/// Each tensor starts on a multiple of this many floats (256 bytes) of the flat buffers, so every
/// view is as aligned as a fresh allocation.
const ALIGN_FLOATS: usize = 64;

/// A tensor's view into a flat buffer: a `CudaSlice` handle that never frees its memory (the flat
/// buffer owns it). Event tracking is off (`Gpu::new`), so the handle carries no events either.
pub(super) struct View(pub(super) ManuallyDrop<Buf>);

impl View {
    fn of(gpu: &Gpu, flat: &Buf, range: Range<usize>) -> Self {
        let (base, _sync) = flat.device_ptr(gpu.stream());
        let ptr = base + (range.start * std::mem::size_of::<f32>()) as u64;
        // SAFETY: `range` lies inside `flat`, which outlives the view (both live in one
        // GpuParams, views dropped first) and is never freed through the view (ManuallyDrop, and
        // `leak` below releases only the stream handle).
        View(ManuallyDrop::new(unsafe {
            gpu.stream().upgrade_device_ptr(ptr, range.len())
        }))
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: taken once, here; `leak` hands back the pointer without freeing it.
        unsafe { ManuallyDrop::take(&mut self.0) }.leak();
    }
}

/// A model's parameters on the GPU: values, gradients and Adam's moments, one flat buffer each,
/// tensors at 256-byte aligned offsets (the padding stays zero and Adam leaves it so).
pub struct GpuParams {
    /// Views of `data` and `grad`, one per tensor; declared first so they drop first.
    pub(super) values: Vec<View>,
    pub(super) grads: Vec<View>,
    pub(super) entries: Vec<ParamEntry>,
    /// Each tensor's range in the flat device buffers.
    pub(super) ranges: Vec<Range<usize>>,
    pub(super) data: Owned,
    pub(super) grad: Owned,
    pub(super) m: Owned,
    pub(super) v: Owned,
    pub(super) step: u64,
}

impl Params<Gpu> for GpuParams {
    fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    fn value(&self, id: ParamId) -> &Buf {
        &self.values[id.0].0
    }

    fn value_and_grads<const N: usize>(&mut self, ids: [ParamId; N]) -> ([&Buf; N], [&mut Buf; N]) {
        let values = ids.map(|id| &*self.values[id.0].0);
        let grads = (self.grads)
            .get_disjoint_mut(ids.map(|id| id.0))
            .expect("distinct tensors");
        (values, grads.map(|g| &mut *g.0))
    }
}

/// The device layout of `entries`: each tensor's range, and the total length.
pub(super) fn layout(entries: &[ParamEntry]) -> (Vec<Range<usize>>, usize) {
    let mut at = 0;
    let ranges = (entries.iter())
        .map(|e| {
            let r = at..at + e.range.len();
            at = r.end.next_multiple_of(ALIGN_FLOATS);
            r
        })
        .collect();
    (ranges, at.max(ALIGN_FLOATS))
}

impl Gpu {
    /// Parameters over the flat buffers `flat`, tensor k at `ranges[k]` (from [`layout`]).
    pub(super) fn params_from(
        &self,
        entries: &[ParamEntry],
        ranges: Vec<Range<usize>>,
        flat: [Owned; 4],
        step: u64,
    ) -> GpuParams {
        let [data, grad, m, v] = flat;
        let views = |buf: &Buf| -> Vec<View> {
            ranges
                .iter()
                .map(|r| View::of(self, buf, r.clone()))
                .collect()
        };
        GpuParams {
            values: views(&data),
            grads: views(&grad),
            entries: entries.to_vec(),
            ranges,
            data,
            grad,
            m,
            v,
            step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_aligns_every_tensor_and_keeps_lengths() {
        let e = |n: usize, at: usize| ParamEntry {
            name: String::new(),
            shape: vec![n],
            range: at..at + n,
            l2: 0.0,
        };
        let (ranges, len) = layout(&[e(3, 0), e(64, 3), e(65, 67)]);
        assert_eq!(ranges, vec![0..3, 64..128, 128..193]);
        assert_eq!(len, 256);
    }
}
