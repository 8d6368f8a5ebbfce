//! kernels/elementwise.cu: one thread per element (the activations, dropout, concatenation, Adam, the L2
//! term, the picture gather).

use crate::cuda::context::Kernel;
use cudarc::driver::{CudaSlice, CudaViewMut, LaunchConfig};

use super::{grid1, int, ints, Buf, Gpu, BLOCK};
use crate::cuda::host_maths::{PICTURE_DAYS, PICTURE_FEATURES};
use crate::error::Result;
use crate::ops::elementwise::Activation;

impl Gpu {
    /// out = f(inp) for activation `act`.
    pub fn activation_forward(
        &self,
        act: Activation,
        out: &mut Buf,
        inp: &Buf,
        n: usize,
    ) -> Result<()> {
        check!("activation_forward", out >= n, inp >= n);
        let (code, n32) = (act.code() as i32, int(n)?);
        self.launch(Kernel::ActivationForward, grid1(n), |l| {
            args!(l, &code, out, inp, &n32);
        })
    }

    /// dinp += dout·f'(inp), with out = f(inp).
    pub fn activation_backward(
        &self,
        act: Activation,
        dinp: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        out: &Buf,
        n: usize,
    ) -> Result<()> {
        check!(
            "activation_backward",
            dinp >= n,
            dout >= n,
            inp >= n,
            out >= n
        );
        let (code, n32) = (act.code() as i32, int(n)?);
        self.launch(Kernel::ActivationBackward, grid1(n), |l| {
            args!(l, &code, dinp, dout, inp, out, &n32);
        })
    }

    /// out = inp·mask with mask[k] = dropout_mask(seed, k, p) (common.cuh), a pure function of
    /// (seed, k) shared with the CPU reference.
    pub fn dropout_forward(
        &self,
        out: &mut Buf,
        mask: &mut Buf,
        inp: &Buf,
        n: usize,
        p: f64,
        seed: u64,
    ) -> Result<()> {
        check!("dropout_forward", out >= n, mask >= n, inp >= n);
        let n32 = int(n)?;
        self.launch(Kernel::DropoutForward, grid1(n), |l| {
            args!(l, out, mask, inp, &n32, &p, &seed);
        })
    }

    /// dinp += dout·mask.
    pub fn dropout_backward(&self, dinp: &mut Buf, dout: &Buf, mask: &Buf, n: usize) -> Result<()> {
        check!("dropout_backward", dinp >= n, dout >= n, mask >= n);
        let n32 = int(n)?;
        self.launch(Kernel::DropoutBackward, grid1(n), |l| {
            args!(l, dinp, dout, mask, &n32);
        })
    }

    /// One input `[rows, width]` of a `[rows, total]` concatenation, placed at column `col`.
    pub fn concat_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        assert!(
            col + width <= total,
            "concat_forward: columns {col}..{} of {total}",
            col + width
        );
        check!("concat_forward", out >= rows * total, inp >= rows * width);
        let [r, w, t, c] = ints([rows, width, total, col])?;
        self.launch(Kernel::ConcatForward, grid1(rows * width), |l| {
            args!(l, out, inp, &r, &w, &t, &c);
        })
    }

    /// dinp [rows, width] += the columns `col..col + width` of dout [rows, total].
    pub fn concat_backward(
        &self,
        dinp: &mut Buf,
        dout: &Buf,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        assert!(
            col + width <= total,
            "concat_backward: columns {col}..{} of {total}",
            col + width
        );
        check!(
            "concat_backward",
            dout >= rows * total,
            dinp >= rows * width
        );
        let [r, w, t, c] = ints([rows, width, total, col])?;
        self.launch(Kernel::ConcatBackward, grid1(rows * width), |l| {
            args!(l, dinp, dout, &r, &w, &t, &c);
        })
    }

    /// One Adam step over the flat parameter buffer; lr_t includes the bias correction.
    #[allow(clippy::too_many_arguments)]
    pub fn adam_update(
        &self,
        params: &mut Buf,
        m: &mut Buf,
        v: &mut Buf,
        grad: &Buf,
        n: usize,
        lr_t: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    ) -> Result<()> {
        check!("adam_update", params >= n, m >= n, v >= n, grad >= n);
        let n32 = int(n)?;
        self.launch(Kernel::AdamUpdate, grid1(n), |l| {
            args!(l, params, m, v, grad, &n32, &lr_t, &beta1, &beta2, &eps);
        })
    }

    /// The L2 term of one tensor θ [n]: grad += coef·θ and sumsq[0] = Σ θ² (the CPU's
    /// `ParamStore::l2_penalty` for one tensor, coef = 2·l2; the host multiplies Σ θ² by l2).
    pub fn l2_penalty(
        &self,
        grad: &mut Buf,
        sumsq: &mut CudaViewMut<'_, f32>,
        theta: &Buf,
        n: usize,
        coef: f32,
    ) -> Result<()> {
        check!("l2_penalty", grad >= n, theta >= n, sumsq >= 1);
        let n32 = int(n)?;
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        self.launch(Kernel::L2Penalty, cfg, |l| {
            args!(l, grad, sumsq, theta, &n32, &coef);
        })
    }

    /// The pictures [B, 15, 30] of `samples`, b (date t, stock i) pairs as 2·b u32, cut from the
    /// panel's feature tensor [T, N, 15] on the device. Dates must be ≥ 29 and both indices
    /// inside the panel (checked by the caller, as the CPU's `gather_pictures` asserts).
    pub fn gather_pictures(
        &self,
        features: &Buf,
        n_stocks: usize,
        samples: &CudaSlice<u32>,
        out: &mut Buf,
    ) -> Result<()> {
        let per = PICTURE_FEATURES * PICTURE_DAYS;
        let b = samples.len() / 2;
        check!("gather_pictures", out >= b * per);
        let [n, nb] = ints([n_stocks, b])?;
        self.launch(Kernel::GatherPictures, grid1(b * per), |l| {
            args!(l, features, &n, samples, &nb, out);
        })
    }
}
