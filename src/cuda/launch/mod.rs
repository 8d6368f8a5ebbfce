//! One launch wrapper per kernel. Each takes the CPU reference op's arguments in the same order
//! and of the same scalar types (src/ops/*), with device buffers for slices and a
//! [`DeviceFeatureSpec`] for the feature layer's `&FeatureSpec`; sizes are checked here (a
//! mismatch is a programming error, as on the CPU side) and converted to the kernels' `int`.
//! The losses return their value as the CPU ones do (one small download). Wrappers whose op
//! needs more than one launch (the recurrent backward passes, the losses) allocate their own
//! scratch buffers.
//!
//! One file per kernel file (kernels/*.cu), each a block of `impl Gpu`: `ts_features`,
//! `pooling`, `batchnorm`, `dense` (with the GEMM helpers of gemm.cuh), `lstm` and `gru` (their
//! shared input projection and launch shape in `recurrent`, as rnn.cuh), `elementwise`, `loss`.
//! This file holds what they share: the size conversions, the grids, the GEMM's strided
//! `View`, `Gpu::launch`, `Gpu::optional_ptr` and the `args!` and `check!` macros.

use cudarc::driver::sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
use cudarc::driver::{DevicePtr, LaunchArgs, LaunchConfig};

use super::context::{Gpu, Kernel};
use crate::error::{Error, Result};

/// Pushes kernel arguments in order: `args!(l, out, inp, &n)` is `l.arg(out); l.arg(inp);
/// l.arg(&n);` (as candle's `builder_arg!`), with no import of `PushKernelArg` needed.
macro_rules! args {
    ($l:ident, $($arg:expr),+ $(,)?) => {
        $( cudarc::driver::PushKernelArg::arg(&mut *$l, $arg); )+
    };
}

/// Asserts that each float buffer holds at least what the kernel indexes, naming the wrapper,
/// the buffer and the size expression: `check!("pool_forward", inp >= b * steps * channels)`
/// panics with "pool_forward: inp holds 10 floats, needs b * steps * channels = 12".
macro_rules! check {
    ($op:literal, $($buf:ident >= $need:expr),+ $(,)?) => {
        $({
            let need: usize = $need;
            assert!(
                $buf.len() >= need,
                concat!($op, ": ", stringify!($buf), " holds {} floats, needs ",
                    stringify!($need), " = {}"),
                $buf.len(),
                need
            );
        })+
    };
}

mod batchnorm;
mod dense;
mod elementwise;
mod gru;
mod loss;
mod lstm;
mod normalize;
mod pooling;
mod recurrent;
mod ts_features;

pub(crate) use loss::Pending;
pub use ts_features::DeviceFeatureSpec;

use super::pool::{Buf, Owned};

/// Shapes shared with the kernels (src/kernel_consts.rs), as the launch code uses them.
const BLOCK: u32 = kernel_consts::BLOCK as u32;
const GEMM_TILE: u32 = kernel_consts::GEMM_TILE as u32;
const GEMM_THREADS: u32 = kernel_consts::GEMM_THREADS as u32;
pub use crate::ops::kernel_consts::MAX_STYLES;
use crate::ops::kernel_consts::{self, SPLIT_ROWS};
/// Dynamic shared memory a kernel may use without opting in.
const DEFAULT_SMEM: u32 = 48 * 1024;

/// A size as the kernels' `int`.
fn int(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Cuda(format!("size {n} exceeds the kernels' 32-bit int")))
}

fn ints<const N: usize>(v: [usize; N]) -> Result<[i32; N]> {
    let mut out = [0; N];
    for (o, x) in out.iter_mut().zip(v) {
        *o = int(x)?;
    }
    Ok(out)
}

fn blocks(n: usize, per: u32) -> u32 {
    (n as u32).div_ceil(per).max(1)
}

fn grid1(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks(n, BLOCK), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Tiles covering an m × n output (blockIdx.y over rows, blockIdx.x over columns), `z` layers.
fn grid_tiles(m: usize, n: usize, z: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks(n, GEMM_TILE), blocks(m, GEMM_TILE), z),
        block_dim: (GEMM_THREADS, GEMM_THREADS, 1),
        shared_mem_bytes: 0,
    }
}

/// One thread per column (blockIdx.x over columns), one block row per range of SPLIT_ROWS rows
/// (blockIdx.y): the chunked column sums.
fn chunked_columns(columns: usize, ranges: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks(columns, BLOCK), ranges as u32, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Ranges of SPLIT_ROWS rows covering `rows` (the split-K partition: shapes only, never the GPU).
fn splits(rows: usize) -> usize {
    rows.div_ceil(SPLIT_ROWS)
}

/// A strided matrix view as the GEMM kernels take it: element (r, c) at p[r·sr + c·sc].
struct View<'a> {
    p: &'a Buf,
    sr: i32,
    sc: i32,
}

fn view(p: &Buf, sr: usize, sc: usize) -> Result<View<'_>> {
    let [sr, sc] = ints([sr, sc])?;
    Ok(View { p, sr, sc })
}

impl<'a> View<'a> {
    /// The kernel arguments (p, sr, sc).
    fn push(&'a self, l: &mut LaunchArgs<'a>) {
        args!(l, self.p, &self.sr, &self.sc);
    }
}

impl Gpu {
    fn launch<'a>(
        &'a self,
        kernel: Kernel,
        cfg: LaunchConfig,
        args: impl FnOnce(&mut LaunchArgs<'a>),
    ) -> Result<()> {
        let (f, name) = (self.function(kernel), kernel.name());
        if cfg.shared_mem_bytes > DEFAULT_SMEM {
            f.set_attribute(
                CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                cfg.shared_mem_bytes as i32,
            )
            .map_err(|e| {
                Error::Cuda(format!(
                    "{name}: {} bytes of shared memory: {e}",
                    cfg.shared_mem_bytes
                ))
            })?;
        }
        let mut l = self.stream.launch_builder(f);
        args(&mut l);
        self.timer.around(name, &self.stream, || {
            // SAFETY: every wrapper checks that its buffers hold what its kernel indexes, and the
            // argument list matches the kernel's parameter list (kernels/*.cu) in type and order.
            unsafe { l.launch(cfg) }
                .map(drop)
                .map_err(|e| Error::Cuda(format!("{name}: {e}")))
        })
    }

    /// A raw device pointer for an optional input (null when absent), with the guard that keeps
    /// the stream ordered with the buffer's other uses.
    fn optional_ptr<'a>(
        &'a self,
        buf: Option<&'a Buf>,
    ) -> (u64, Option<cudarc::driver::SyncOnDrop<'a>>) {
        match buf {
            Some(b) => {
                let (p, sync) = b.device_ptr(&self.stream);
                (p, Some(sync))
            }
            None => (0, None),
        }
    }
}
