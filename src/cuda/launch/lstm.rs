//! kernels/lstm.cu: the LSTM layer, the recurrence fused over all steps.

use super::recurrent::rnn_config;
use super::{ints, Buf, Gpu};
use crate::cuda::context::Kernel;
use crate::error::Result;
use crate::ops::kernel_consts::RNN_SAMPLES;

impl Gpu {
    /// LSTM over x [B, S, I] → h_out [B, H], cache [B, S, 7H] (i, f, c̃, o, c_t, tanh c_t, h_t).
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_forward(
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
        let g = 4 * h;
        check!(
            "lstm_forward",
            bias >= g,
            h_out >= b * h,
            cache >= b * s * 7 * h,
        );
        let zx = self.input_projection(x, w_ih, w_hh, bias, b * s, i, h, g)?;
        let [nb, ns, nh] = ints([b, s, h])?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (g + 2 * h));
        self.launch(Kernel::LstmForward, cfg, |l| {
            args!(l, h_out, cache, &zx, w_hh, &nb, &ns, &nh);
        })
    }

    /// LSTM backward through time; accumulates into dx (when given), dw_ih, dw_hh, dbias.
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_backward(
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
        let (g, rows) = (4 * h, b * s);
        check!(
            "lstm_backward",
            x >= rows * i,
            cache >= rows * 7 * h,
            dh_out >= b * h,
            dw_ih >= i * g,
            dw_hh >= h * g,
            dbias >= g,
            w_ih >= i * g,
            w_hh >= h * g,
        );
        let mut dz = self.scratch(rows * g)?;
        let mut hprev = self.scratch(rows * h)?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (g + 2 * h));
        let [nb, ns, nh] = ints([b, s, h])?;
        self.launch(Kernel::LstmBackwardSteps, cfg, |l| {
            args!(l, &mut dz, &mut hprev, dh_out, cache, w_hh, &nb, &ns, &nh);
        })?;
        self.input_side_backward(dx, dw_ih, &dz, x, w_ih, rows, i, g)?;
        self.matmul_tn_acc(dw_hh, &hprev, &dz, h, g, rows, h, g)?;
        self.colsum_acc(&mut dbias.slice_mut(..g), &dz, rows, g, g)
    }
}
