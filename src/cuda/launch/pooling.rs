//! kernels/pooling.cu: v1's temporal pooling (mean, max, min over each window).

use super::{grid1, ints, Buf, Gpu};
use crate::cuda::context::Kernel;
use crate::error::Result;
use crate::ops::pooling::pooled_steps;

impl Gpu {
    /// `out[B, S', 3C]` = mean, max, min over each window of `inp[B, steps, C]`.
    #[allow(clippy::too_many_arguments)]
    pub fn pool_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        b: usize,
        steps: usize,
        channels: usize,
        window: usize,
        stride: usize,
    ) -> Result<()> {
        let s = pooled_steps(steps, window, stride);
        check!(
            "pool_forward",
            inp >= b * steps * channels,
            out >= b * s * 3 * channels,
        );
        let [nb, st, c, w, sd] = ints([b, steps, channels, window, stride])?;
        self.launch(Kernel::PoolForward, grid1(b * channels), |l| {
            args!(l, out, inp, &nb, &st, &c, &w, &sd);
        })
    }

    /// Accumulates `∂L/∂inp` into `dinp[B, steps, C]` from `dout[B, S', 3C]`.
    #[allow(clippy::too_many_arguments)]
    pub fn pool_backward(
        &self,
        dinp: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        b: usize,
        steps: usize,
        channels: usize,
        window: usize,
        stride: usize,
    ) -> Result<()> {
        let s = pooled_steps(steps, window, stride);
        check!(
            "pool_backward",
            inp >= b * steps * channels,
            dinp >= inp.len(),
            dout >= b * s * 3 * channels,
        );
        let [nb, st, c, w, sd] = ints([b, steps, channels, window, stride])?;
        self.launch(Kernel::PoolBackward, grid1(b * channels), |l| {
            args!(l, dinp, dout, inp, &nb, &st, &c, &w, &sd);
        })
    }
}
