//! What the LSTM and GRU wrappers share (as kernels/rnn.cuh and src/ops/recurrent.rs): the
//! fused kernels' launch shape and the input projection, one GEMM over all (sample, step) rows
//! before the step-by-step kernel.

use cudarc::driver::LaunchConfig;

use super::{blocks, Buf, Gpu};
use crate::error::Result;
use crate::kernel_consts::RNN_SAMPLES;

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
    ) -> Result<Buf> {
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
}
