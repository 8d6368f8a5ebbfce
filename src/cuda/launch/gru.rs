//! kernels/gru.cu: the GRU layer (Keras reset_after), the recurrence fused over all steps.

use super::recurrent::rnn_config;
use super::{ints, Buf, Gpu};
use crate::cuda::context::Kernel;
use crate::error::Result;
use crate::ops::kernel_consts::RNN_SAMPLES;

impl Gpu {
    /// GRU (reset_after) over x [B, S, I] → h_out [B, H], cache [B, S, 5H] (z, r, ĥ, hU_h + b_hh, h_t).
    #[allow(clippy::too_many_arguments)]
    pub fn gru_forward(
        &self,
        h_out: &mut Buf,
        cache: &mut Buf,
        x: &Buf,
        w_ih: &Buf,
        w_hh: &Buf,
        bias: &Buf,
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()> {
        let g = 3 * h;
        check!(
            "gru_forward",
            bias >= 2 * g,
            h_out >= b * h,
            cache >= b * s * 5 * h,
        );
        // The input bias row b_ih goes into zx; the kernel adds the recurrent row b_hh to h·U.
        let zx = self.input_projection(x, w_ih, w_hh, bias, b * s, i, h, g)?;
        let [nb, ns, nh] = ints([b, s, h])?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (2 * g + h));
        self.launch(Kernel::GruForward, cfg, |l| {
            args!(l, h_out, cache, &zx, w_hh, bias, &nb, &ns, &nh);
        })
    }

    /// GRU backward through time; accumulates into dx (when given), dw_ih, dw_hh, dbias [2, 3H].
    #[allow(clippy::too_many_arguments)]
    pub fn gru_backward(
        &self,
        dx: Option<&mut Buf>,
        dw_ih: &mut Buf,
        dw_hh: &mut Buf,
        dbias: &mut Buf,
        dh_out: &Buf,
        cache: &Buf,
        x: &Buf,
        w_ih: &Buf,
        w_hh: &Buf,
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()> {
        let (g, rows) = (3 * h, b * s);
        check!(
            "gru_backward",
            x >= rows * i,
            cache >= rows * 5 * h,
            dh_out >= b * h,
            dw_ih >= i * g,
            dw_hh >= h * g,
            dbias >= 2 * g,
            w_ih >= i * g,
            w_hh >= h * g,
        );
        let mut dzx = self.scratch(rows * g)?;
        let mut dzh = self.scratch(rows * g)?;
        let mut hprev = self.scratch(rows * h)?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (2 * g + h));
        let [nb, ns, nh] = ints([b, s, h])?;
        self.launch(Kernel::GruBackwardSteps, cfg, |l| {
            args!(l, &mut dzx, &mut dzh, &mut hprev, dh_out, cache, w_hh, &nb, &ns, &nh);
        })?;
        self.input_side_backward(dx, dw_ih, &dzx, x, w_ih, rows, i, g)?;
        self.matmul_tn_acc(dw_hh, &hprev, &dzh, h, g, rows, h, g)?;
        self.colsum_acc(&mut dbias.slice_mut(..g), &dzx, rows, g, g)?;
        self.colsum_acc(&mut dbias.slice_mut(g..2 * g), &dzh, rows, g, g)
    }
}
