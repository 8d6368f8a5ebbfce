//! One model, two backends (docs/engine.md#devices): the [`Device`] trait is the list of ops the
//! tape and the trainer use, each with the CPU reference op's arguments in the same order, on the
//! device's own buffers. [`Cpu`] runs them with `src/ops/*` on host slices; the GPU
//! (`src/cuda/device.rs`) runs the kernels of `kernels/*.cu` on device buffers. The model
//! (`src/model`), the tape (`src/autograd/tape/`) and the training step (`src/train/step.rs`)
//! are written once against this trait.

mod cpu;

pub use cpu::Cpu;

use crate::autograd::adam::AdamConfig;
use crate::autograd::params::{ParamEntry, ParamId};
use crate::ops::elementwise::Activation;
use crate::ops::loss::LossConfig;
use crate::ops::recurrent::Recurrent;
use crate::ops::ts_features::FeatureSpec;
use crate::util::float::Float;
use crate::Result;
use std::borrow::{Borrow, BorrowMut};
use std::ops::Range;

/// A model's parameters on a device: values, gradients and Adam's moments in flat buffers of the
/// same layout, addressed per tensor by [`ParamId`].
pub trait Params<D: Device + ?Sized> {
    fn entries(&self) -> &[ParamEntry];
    fn value(&self, id: ParamId) -> &D::Slice;
    /// The values and the gradients of `N` distinct tensors at once.
    fn value_and_grads<const N: usize>(
        &mut self,
        ids: [ParamId; N],
    ) -> ([&D::Slice; N], [&mut D::Slice; N]);

    fn entry(&self, id: ParamId) -> &ParamEntry {
        &self.entries()[id.0]
    }
}

/// A batch of whole dates (or chunks of one date): pictures `[B, F, D]`, z-scored labels,
/// v2.3 weights, style exposures `[B, K]` and the row offsets of each date group.
#[derive(Debug, Clone, Default)]
pub struct Batch<T> {
    pub x: Vec<T>,
    pub y: Vec<T>,
    pub w: Vec<T>,
    pub styles: Vec<T>,
    pub k: usize,
    pub offsets: Vec<usize>,
}

impl<T: Float> Batch<T> {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// A training batch on a device: pictures `[B, F, D]`, z-scored labels, v2.3 weights, style
/// exposures `[B, K]`, and the date groups (row offsets) on the host and as the device keeps them.
pub struct DeviceBatch<D: Device + ?Sized> {
    pub n: usize,
    pub x: D::Buf,
    pub y: D::Buf,
    pub w: D::Buf,
    pub styles: D::Buf,
    pub k: usize,
    pub offsets: Vec<usize>,
    pub groups: D::Groups,
}

/// The ops of a backend. Every op takes the CPU reference's arguments (src/ops/*) in the same
/// order; `Option<&mut Slice>` for an input gradient that may be skipped (the CPU's empty slice).
#[allow(clippy::too_many_arguments)]
pub trait Device: Sync {
    type T: Float;
    /// A borrowed tensor: `[T]` on the CPU, a device buffer on the GPU.
    type Slice: ?Sized;
    /// An owned tensor.
    type Buf: Borrow<Self::Slice> + BorrowMut<Self::Slice> + Send + Sync;
    /// A feature spec as the feature op takes it.
    type Spec: Send + Sync;
    type Params: Params<Self> + Send;
    /// A batch's date-group offsets as the neutralized loss reads them.
    type Groups: Sync;
    /// A scalar (loss, L2 term) the device may still be computing.
    type Pending: Send;

    /// Runs one step's host code where it runs best (the CPU: on a worker of its thread pool, so
    /// that each parallel loop of the step starts and ends inside the pool instead of handing
    /// work from this thread to the pool and back, two context switches per loop).
    fn scope<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        f()
    }

    /// "cpu (N threads)" or the GPU's name.
    fn describe(&self) -> String;
    fn len(x: &Self::Slice) -> usize;
    fn zeros(&self, n: usize) -> Result<Self::Buf>;
    /// A buffer the next op overwrites in full before anything reads it.
    fn scratch(&self, n: usize) -> Result<Self::Buf> {
        self.zeros(n)
    }
    fn upload(&self, host: &[Self::T]) -> Result<Self::Buf>;
    fn download(&self, x: &Self::Slice) -> Result<Vec<Self::T>>;
    fn copy(&self, x: &Self::Slice) -> Result<Self::Buf>;

    /// Parameters laid out as `entries` over the host's flat values, gradients and moments.
    fn params(
        &self,
        entries: &[ParamEntry],
        flat: [&[Self::T]; 4],
        step: u64,
    ) -> Result<Self::Params>;
    /// (values, gradients, m, v) in the host's flat layout, and Adam's step counter.
    fn params_to_host(&self, p: &Self::Params) -> Result<([Vec<Self::T>; 4], u64)>;
    fn copy_params(&self, p: &Self::Params) -> Result<Self::Params>;
    fn zero_grad(&self, p: &mut Self::Params) -> Result<()>;
    /// `Σ l2·Σθ²` over the regularised tensors, and `2·l2·θ` added to their gradients.
    fn l2_penalty(&self, p: &mut Self::Params) -> Result<Self::Pending>;
    /// One Adam step over the flat buffers (`adam_update`), the step counter advanced.
    fn adam_step(&self, p: &mut Self::Params, cfg: &AdamConfig) -> Result<()>;

    fn feature_spec(&self, spec: &FeatureSpec) -> Result<Self::Spec>;
    fn spec_dims(spec: &Self::Spec) -> &FeatureSpec;

    /// A host batch on the device (`x` as given, already there).
    fn batch(&self, host: &Batch<Self::T>, x: Self::Buf) -> Result<DeviceBatch<Self>>;

    fn normalize_pictures(&self, out: &mut Self::Slice, inp: &Self::Slice, b: usize) -> Result<()>;
    fn ts_features_forward(
        &self,
        out: &mut Self::Slice,
        inp: &Self::Slice,
        b: usize,
        spec: &Self::Spec,
    ) -> Result<()>;
    fn pool_forward(
        &self,
        out: &mut Self::Slice,
        inp: &Self::Slice,
        b: usize,
        steps: usize,
        channels: usize,
        window: usize,
        stride: usize,
    ) -> Result<()>;
    fn pool_backward(
        &self,
        dinp: &mut Self::Slice,
        dout: &Self::Slice,
        inp: &Self::Slice,
        b: usize,
        steps: usize,
        channels: usize,
        window: usize,
        stride: usize,
    ) -> Result<()>;
    fn batchnorm_forward(
        &self,
        out: &mut Self::Slice,
        mean: &mut Self::Slice,
        var: &mut Self::Slice,
        inp: &Self::Slice,
        gamma: &Self::Slice,
        beta: &Self::Slice,
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()>;
    fn batchnorm_inference(
        &self,
        out: &mut Self::Slice,
        inp: &Self::Slice,
        gamma: &Self::Slice,
        beta: &Self::Slice,
        moving_mean: &Self::Slice,
        moving_var: &Self::Slice,
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()>;
    fn batchnorm_backward(
        &self,
        dinp: Option<&mut Self::Slice>,
        dgamma: &mut Self::Slice,
        dbeta: &mut Self::Slice,
        dout: &Self::Slice,
        inp: &Self::Slice,
        mean: &Self::Slice,
        var: &Self::Slice,
        gamma: &Self::Slice,
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()>;
    fn batchnorm_update_moving(
        &self,
        moving_mean: &mut Self::Slice,
        moving_var: &mut Self::Slice,
        mean: &Self::Slice,
        var: &Self::Slice,
        c: usize,
        momentum: f64,
    ) -> Result<()>;
    /// Cache length of a recurrent layer for `b` samples, `s` steps, `h` units.
    fn recurrent_cache_len(kind: Recurrent, b: usize, s: usize, h: usize) -> usize;
    fn recurrent_forward(
        &self,
        kind: Recurrent,
        h_out: &mut Self::Slice,
        cache: &mut Self::Slice,
        x: &Self::Slice,
        w_ih: &Self::Slice,
        w_hh: &Self::Slice,
        bias: &Self::Slice,
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()>;
    fn recurrent_backward(
        &self,
        kind: Recurrent,
        dx: Option<&mut Self::Slice>,
        dw: [&mut Self::Slice; 3],
        dh_out: &Self::Slice,
        cache: &Self::Slice,
        x: &Self::Slice,
        w_ih: &Self::Slice,
        w_hh: &Self::Slice,
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()>;
    /// The backward pass of `BN(data) → recurrent` into the parameter gradients only
    /// (`[dγ, dβ, dW_ih, dW_hh, dbias]`): what `batchnorm_backward` with no input gradient after
    /// `recurrent_backward` gives, by whatever route is cheapest on the device.
    fn bn_recurrent_backward(
        &self,
        kind: Recurrent,
        grads: [&mut Self::Slice; 5],
        dh_out: &Self::Slice,
        cache: &Self::Slice,
        bn_inp: &Self::Slice,
        bn_out: &Self::Slice,
        mean: &Self::Slice,
        var: &Self::Slice,
        eps: f64,
        weights: [&Self::Slice; 4],
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()>;
    fn dense_forward(
        &self,
        out: &mut Self::Slice,
        inp: &Self::Slice,
        w: &Self::Slice,
        bias: &Self::Slice,
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()>;
    fn dense_backward(
        &self,
        dinp: Option<&mut Self::Slice>,
        dw: &mut Self::Slice,
        dbias: &mut Self::Slice,
        dout: &Self::Slice,
        inp: &Self::Slice,
        w: &Self::Slice,
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()>;
    fn activation_forward(
        &self,
        act: Activation,
        out: &mut Self::Slice,
        inp: &Self::Slice,
        n: usize,
    ) -> Result<()>;
    fn activation_backward(
        &self,
        act: Activation,
        dinp: &mut Self::Slice,
        dout: &Self::Slice,
        inp: &Self::Slice,
        out: &Self::Slice,
        n: usize,
    ) -> Result<()>;
    fn dropout_forward(
        &self,
        out: &mut Self::Slice,
        mask: &mut Self::Slice,
        inp: &Self::Slice,
        n: usize,
        p: f64,
        seed: u64,
    ) -> Result<()>;
    fn dropout_backward(
        &self,
        dinp: &mut Self::Slice,
        dout: &Self::Slice,
        mask: &Self::Slice,
        n: usize,
    ) -> Result<()>;
    fn concat_forward(
        &self,
        out: &mut Self::Slice,
        inp: &Self::Slice,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()>;
    fn concat_backward(
        &self,
        dinp: &mut Self::Slice,
        dout: &Self::Slice,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()>;
    /// The configured loss of predictions `pred` (`batch_loss`), its gradient written to `dpred`.
    fn loss(
        &self,
        dpred: &mut Self::Slice,
        pred: &Self::Slice,
        batch: &DeviceBatch<Self>,
        loss: &LossConfig,
    ) -> Result<Self::Pending>;
    /// A pending scalar's value and, for the neutralized loss, the date groups that fell back to
    /// plain MSE.
    fn read(&self, p: Self::Pending) -> Result<(f64, usize)>;
}

/// Mutable references to `N` distinct ranges of one slice (the gradients of `N` tensors of a flat
/// store), in the order asked.
pub fn disjoint_mut<'a, T, const N: usize>(
    flat: &'a mut [T],
    ranges: [Range<usize>; N],
) -> [&'a mut [T]; N] {
    let mut order: [usize; N] = std::array::from_fn(|k| k);
    order.sort_by_key(|&k| ranges[k].start);
    let mut out: [Option<&'a mut [T]>; N] = std::array::from_fn(|_| None);
    let (mut rest, mut at) = (flat, 0usize);
    for &k in &order {
        let r = &ranges[k];
        assert!(r.start >= at, "disjoint_mut: ranges overlap");
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(r.start - at);
        let (mine, tail) = tail.split_at_mut(r.len());
        out[k] = Some(mine);
        rest = tail;
        at = r.end;
    }
    out.map(|s| s.expect("every range placed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_mut_hands_out_the_ranges_asked_in_their_order() {
        let mut v: Vec<i32> = (0..10).collect();
        let [a, b, c] = disjoint_mut(&mut v, [6..8, 0..2, 3..6]);
        assert_eq!((&*a, &*b, &*c), (&[6, 7][..], &[0, 1][..], &[3, 4, 5][..]));
        a[0] = -1;
        assert_eq!(v[6], -1);
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn disjoint_mut_refuses_overlaps() {
        let mut v = vec![0; 10];
        let _ = disjoint_mut(&mut v, [0..5, 4..6]);
    }
}
