//! What the LSTM and GRU wrappers share (as kernels/rnn.cuh and src/ops/recurrent.rs): the
//! fused kernels' launch shape and the input projection, one GEMM over all (sample, step) rows
//! before the step-by-step kernel.

use cudarc::driver::LaunchConfig;

use super::{blocks, view, Buf, Gpu, Owned};
use crate::error::Result;
use crate::ops::kernel_consts::RNN_SAMPLES;

/// One block per RNN_SAMPLES samples, one thread per gate column (rounded to whole warps).
pub(super) fn rnn_config(b: usize, gates: usize, smem_floats: usize) -> LaunchConfig {
    let threads = (gates.div_ceil(32) * 32).clamp(32, 1024) as u32;
    LaunchConfig {
        grid_dim: (blocks(b, RNN_SAMPLES as u32), 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: (4 * smem_floats) as u32,
    }
}

impl Gpu {
    /// zx [rows, G] = x [rows, I]·w_ih [I, G] + bias[..G]: a recurrent layer's input side for all
    /// (sample, step) rows at once, leaving only h·U to the step-by-step kernel.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn input_projection(
        &self,
        x: &Buf,
        w_ih: &Buf,
        w_hh: &Buf,
        bias: &Buf,
        rows: usize,
        i: usize,
        h: usize,
        g: usize,
    ) -> Result<Owned> {
        check!(
            "input_projection",
            x >= rows * i,
            w_ih >= i * g,
            w_hh >= h * g,
        );
        let mut zx = self.scratch(rows * g)?;
        self.dense_forward(&mut zx, x, w_ih, bias, rows, i, g)?;
        Ok(zx)
    }

    /// The input side's gradients, GEMMs over all (sample, step) rows: dw_ih += xᵀ·dz and, when
    /// asked, dx += dz·w_ihᵀ.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn input_side_backward(
        &self,
        dx: Option<&mut Buf>,
        dw_ih: &mut Buf,
        dz: &Buf,
        x: &Buf,
        w_ih: &Buf,
        rows: usize,
        i: usize,
        g: usize,
    ) -> Result<()> {
        if let Some(dx) = dx {
            check!("input_side_backward", dx >= rows * i);
            self.matmul_acc(dx, i, view(dz, g, 1)?, view(w_ih, 1, g)?, rows, i, g)?;
        }
        self.matmul_tn_acc(dw_ih, x, dz, i, g, rows, i, g)
    }
}
