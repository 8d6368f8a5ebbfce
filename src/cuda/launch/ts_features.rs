//! kernels/ts_features.cu: the feature extraction layer.

use crate::cuda::context::Kernel;
use cudarc::driver::{LaunchArgs, LaunchConfig};

use super::{ints, Buf, Gpu};
use crate::cuda::pool::Pooled;
use crate::error::Result;
use crate::ops::ts_features::FeatureSpec;

/// A [`FeatureSpec`] with its pairs on the device: what the feature kernels take in place of the
/// CPU's `&FeatureSpec`, flattened to (n_features, days, window, stride, ops, n_pairs, pairs).
pub struct DeviceFeatureSpec {
    pub spec: FeatureSpec,
    /// The spec's pairs (i, j) as 2·n_pairs u16.
    pairs: Pooled<u16>,
}

/// The feature kernels' launch (one block per sample, the picture and every window's centered
/// values, stats (3 floats) and gradients in dynamic shared memory, see TsLayout in
/// ts_features.cu) and their scalar arguments b, F, D, d, stride, ops, n_pairs.
fn ts_launch(b: usize, s: &FeatureSpec) -> Result<(LaunchConfig, [i32; 7])> {
    let floats = s.n_features * s.days + s.n_features * s.steps() * (2 * s.window + 3);
    let cfg = LaunchConfig {
        grid_dim: (b.max(1) as u32, 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: (4 * floats) as u32,
    };
    let ops = s.ops.mask() as usize;
    let args = ints([
        b,
        s.n_features,
        s.days,
        s.window,
        s.stride,
        ops,
        s.pairs.len(),
    ])?;
    Ok((cfg, args))
}

fn push_ts_args<'a>(l: &mut LaunchArgs<'a>, args: &'a [i32; 7], pairs: &'a Pooled<u16>) {
    for a in args {
        args!(l, a);
    }
    args!(l, pairs);
}

impl Gpu {
    /// The spec as the feature kernels take it: its pair list uploaded once.
    pub fn feature_spec(&self, spec: &FeatureSpec) -> Result<DeviceFeatureSpec> {
        let flat: Vec<u16> = spec.pairs.iter().flat_map(|&(i, j)| [i, j]).collect();
        Ok(DeviceFeatureSpec {
            spec: spec.clone(),
            // A zero-length allocation is not allowed: a spec without pairs keeps one dummy.
            pairs: self.upload(if flat.is_empty() { &[0, 0] } else { &flat })?,
        })
    }

    /// inp [B, F, D] → out [B, S, C]; see kernels/ts_features.cu for the channel order.
    pub fn ts_features_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        b: usize,
        spec: &DeviceFeatureSpec,
    ) -> Result<()> {
        let s = &spec.spec;
        check!(
            "ts_features_forward",
            inp >= b * s.n_features * s.days,
            out >= b * s.steps() * s.channels(),
        );
        let (cfg, args) = ts_launch(b, s)?;
        self.launch(Kernel::TsFeaturesForward, cfg, |l| {
            args!(l, out, inp);
            push_ts_args(l, &args, &spec.pairs);
        })
    }

    /// dinp [B, F, D] += ∂L/∂inp given dout [B, S, C].
    pub fn ts_features_backward(
        &self,
        dinp: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        b: usize,
        spec: &DeviceFeatureSpec,
    ) -> Result<()> {
        let s = &spec.spec;
        check!(
            "ts_features_backward",
            inp >= b * s.n_features * s.days,
            dinp >= inp.len(),
            dout >= b * s.steps() * s.channels(),
        );
        let (cfg, args) = ts_launch(b, s)?;
        self.launch(Kernel::TsFeaturesBackward, cfg, |l| {
            args!(l, dinp, dout, inp);
            push_ts_args(l, &args, &spec.pairs);
        })
    }
}
