//! One launch wrapper per kernel. Each takes the CPU reference op's arguments in the same order
//! and of the same scalar types (src/ops/*), with device buffers for slices and a
//! [`DeviceFeatureSpec`] for the feature layer's `&FeatureSpec`; sizes are checked here (a
//! mismatch is a programming error, as on the CPU side) and converted to the kernels' `int`.
//! The losses return their value as the CPU ones do (one small download). Wrappers whose op
//! needs more than one launch (the recurrent backward passes, the losses) allocate their own
//! scratch buffers.

use cudarc::driver::sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
use cudarc::driver::{
    CudaSlice, DevicePtr, DevicePtrMut, DeviceSlice, LaunchArgs, LaunchConfig, PushKernelArg,
};

use super::context::Gpu;
use super::host_maths::{ops_mask, PICTURE_DAYS, PICTURE_FEATURES};
use crate::error::{Error, Result};
use crate::ops::loss::NeutralizedLoss;
use crate::ops::ts_features::FeatureSpec;

type Buf = CudaSlice<f32>;

/// Shapes shared with the kernels (src/kernel_consts.rs), as the launch code uses them.
const BLOCK: u32 = kernel_consts::BLOCK as u32;
const GEMM_TILE: u32 = kernel_consts::GEMM_TILE as u32;
const GEMM_THREADS: u32 = kernel_consts::GEMM_THREADS as u32;
pub use crate::kernel_consts::MAX_STYLES;
use crate::kernel_consts::{self, RNN_SAMPLES, SPLIT_ROWS};
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
        l.arg(self.p).arg(&self.sr).arg(&self.sc);
    }
}

/// A [`FeatureSpec`] with its pairs on the device: what the feature kernels take in place of the
/// CPU's `&FeatureSpec`, flattened to (n_features, days, window, stride, ops, n_pairs, pairs).
pub struct DeviceFeatureSpec {
    pub spec: FeatureSpec,
    /// The spec's pairs (i, j) as 2·n_pairs u16.
    pairs: CudaSlice<u16>,
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
    let ops = ops_mask(s.ops) as usize;
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

fn push_ts_args<'a>(l: &mut LaunchArgs<'a>, args: &'a [i32; 7], pairs: &'a CudaSlice<u16>) {
    for a in args {
        l.arg(a);
    }
    l.arg(pairs);
}

/// One block per RNN_SAMPLES samples, one thread per gate column (rounded to whole warps).
fn rnn_config(b: usize, gates: usize, smem_floats: usize) -> LaunchConfig {
    let threads = (gates.div_ceil(32) * 32).clamp(32, 1024) as u32;
    LaunchConfig {
        grid_dim: (blocks(b, RNN_SAMPLES as u32), 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: (4 * smem_floats) as u32,
    }
}

impl Gpu {
    fn launch<'a>(
        &'a self,
        name: &str,
        cfg: LaunchConfig,
        args: impl FnOnce(&mut LaunchArgs<'a>),
    ) -> Result<()> {
        let f = self.function(name);
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

    // ---- feature extraction -----------------------------------------------------------------

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
        assert!(
            inp.len() >= b * s.n_features * s.days && out.len() >= b * s.steps() * s.channels()
        );
        let (cfg, args) = ts_launch(b, s)?;
        self.launch("ts_features_forward", cfg, |l| {
            l.arg(out).arg(inp);
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
        assert!(
            inp.len() >= b * s.n_features * s.days
                && dinp.len() >= inp.len()
                && dout.len() >= b * s.steps() * s.channels()
        );
        let (cfg, args) = ts_launch(b, s)?;
        self.launch("ts_features_backward", cfg, |l| {
            l.arg(dinp).arg(dout).arg(inp);
            push_ts_args(l, &args, &spec.pairs);
        })
    }

    // ---- pooling ------------------------------------------------------------------------------

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
        let s = (steps - window) / stride + 1;
        assert!(inp.len() >= b * steps * channels && out.len() >= b * s * 3 * channels);
        let (nb, st, c, w, sd) = (
            int(b)?,
            int(steps)?,
            int(channels)?,
            int(window)?,
            int(stride)?,
        );
        self.launch("pool_forward", grid1(b * channels), |l| {
            l.arg(out)
                .arg(inp)
                .arg(&nb)
                .arg(&st)
                .arg(&c)
                .arg(&w)
                .arg(&sd);
        })
    }

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
        let s = (steps - window) / stride + 1;
        assert!(
            inp.len() >= b * steps * channels
                && dinp.len() >= inp.len()
                && dout.len() >= b * s * 3 * channels
        );
        let (nb, st, c, w, sd) = (
            int(b)?,
            int(steps)?,
            int(channels)?,
            int(window)?,
            int(stride)?,
        );
        self.launch("pool_backward", grid1(b * channels), |l| {
            l.arg(dinp)
                .arg(dout)
                .arg(inp)
                .arg(&nb)
                .arg(&st)
                .arg(&c)
                .arg(&w)
                .arg(&sd);
        })
    }

    // ---- batch norm ---------------------------------------------------------------------------

    /// Training forward: batch mean, then the centred second moment (two passes, as the CPU),
    /// each a chunked column sum; then the normalisation with those statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_forward(
        &self,
        out: &mut Buf,
        mean: &mut Buf,
        var: &mut Buf,
        inp: &Buf,
        gamma: &Buf,
        beta: &Buf,
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()> {
        assert!(
            inp.len() >= r * c
                && out.len() >= r * c
                && mean.len() >= c
                && var.len() >= c
                && gamma.len() >= c
                && beta.len() >= c,
            "batchnorm_forward: a buffer is shorter than r = {r} rows × c = {c} channels"
        );
        // CPU: mean = Σx · inv_r with inv_r = 1/r rounded once from f64.
        let inv_r = (1.0 / r as f64) as f32;
        self.column_sums(mean, inp, None, r, c, c, inv_r, false)?;
        self.column_sums(var, inp, Some(&*mean), r, c, c, inv_r, false)?;
        self.batchnorm_inference(out, inp, gamma, beta, mean, var, r, c, eps)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_inference(
        &self,
        out: &mut Buf,
        inp: &Buf,
        gamma: &Buf,
        beta: &Buf,
        moving_mean: &Buf,
        moving_var: &Buf,
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()> {
        assert!(
            inp.len() >= r * c
                && out.len() >= r * c
                && moving_mean.len() >= c
                && moving_var.len() >= c
        );
        let (nr, nc) = (int(r)?, int(c)?);
        self.launch("batchnorm_inference", grid1(r * c), |l| {
            l.arg(out)
                .arg(inp)
                .arg(gamma)
                .arg(beta)
                .arg(moving_mean)
                .arg(moving_var)
                .arg(&nr)
                .arg(&nc)
                .arg(&eps);
        })
    }

    /// Training backward: the chunked sums Σdy and Σdy·x̂ per channel (added to dβ, dγ), then
    /// dinp element by element.
    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_backward(
        &self,
        dinp: &mut Buf,
        dgamma: &mut Buf,
        dbeta: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        mean: &Buf,
        var: &Buf,
        gamma: &Buf,
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()> {
        assert!(
            dinp.len() >= r * c && gamma.len() >= c,
            "batchnorm_backward: dinp or gamma is shorter than r = {r} rows × c = {c} channels"
        );
        let sums = self.batchnorm_param_grads(dgamma, dbeta, dout, inp, mean, var, r, c, eps)?;
        let (nr, nc) = (int(r)?, int(c)?);
        self.launch("batchnorm_backward_apply", grid1(r * c), |l| {
            l.arg(dinp)
                .arg(dout)
                .arg(inp)
                .arg(mean)
                .arg(var)
                .arg(gamma)
                .arg(&sums)
                .arg(&nr)
                .arg(&nc)
                .arg(&eps);
        })
    }

    /// The backward pass of a BN layer whose input takes no gradient (the CPU op called with an
    /// empty dinp): dβ += Σdy, dγ += Σdy·x̂; returns those sums [2C] (for dinp).
    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_param_grads(
        &self,
        dgamma: &mut Buf,
        dbeta: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        mean: &Buf,
        var: &Buf,
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<Buf> {
        assert!(
            inp.len() >= r * c
                && dout.len() >= r * c
                && dgamma.len() >= c
                && dbeta.len() >= c
                && mean.len() >= c
                && var.len() >= c,
            "batchnorm backward: a buffer is shorter than r = {r} rows × c = {c} channels"
        );
        let z = splits(r);
        let mut partial = self.scratch(z * 2 * c)?;
        let (nr, nc) = (int(r)?, int(c)?);
        self.launch("batchnorm_backward_partials", chunked_columns(c, z), |l| {
            l.arg(&mut partial)
                .arg(dout)
                .arg(inp)
                .arg(mean)
                .arg(var)
                .arg(&nr)
                .arg(&nc)
                .arg(&eps);
        })?;
        let mut sums = self.scratch(2 * c)?;
        self.splitk_combine(&mut sums, &partial, 2 * c, 2 * c, z, 1.0, false)?;
        self.splitk_combine(dbeta, &partial, c, 2 * c, z, 1.0, true)?;
        self.splitk_combine(dgamma, &partial.slice(c..), c, 2 * c, z, 1.0, true)?;
        Ok(sums)
    }

    pub fn batchnorm_update_moving(
        &self,
        moving_mean: &mut Buf,
        moving_var: &mut Buf,
        mean: &Buf,
        var: &Buf,
        c: usize,
        momentum: f64,
    ) -> Result<()> {
        assert!(
            moving_mean.len() >= c && moving_var.len() >= c && mean.len() >= c && var.len() >= c
        );
        let nc = int(c)?;
        self.launch("batchnorm_update_moving", grid1(c), |l| {
            l.arg(moving_mean)
                .arg(moving_var)
                .arg(mean)
                .arg(var)
                .arg(&nc)
                .arg(&momentum);
        })
    }

    // ---- dense --------------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn dense_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        w: &Buf,
        bias: &Buf,
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()> {
        assert!(inp.len() >= b * i && w.len() >= i * o && bias.len() >= o && out.len() >= b * o);
        let (nb, ni, no) = (int(b)?, int(i)?, int(o)?);
        self.launch("dense_forward", grid_tiles(b, o, 1), |l| {
            l.arg(out)
                .arg(inp)
                .arg(w)
                .arg(bias)
                .arg(&nb)
                .arg(&ni)
                .arg(&no);
        })
    }

    /// dinp += dout·wᵀ, dw += inpᵀ·dout (split-K over the batch), dbias += Σ_b dout.
    #[allow(clippy::too_many_arguments)]
    pub fn dense_backward(
        &self,
        dinp: &mut Buf,
        dw: &mut Buf,
        dbias: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        w: &Buf,
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()> {
        assert!(
            inp.len() >= b * i
                && dinp.len() >= b * i
                && w.len() >= i * o
                && dw.len() >= i * o
                && dbias.len() >= o
                && dout.len() >= b * o,
            "dense_backward: a buffer is too short for b = {b}, i = {i}, o = {o}"
        );
        // dinp(b, k) += Σ_n dout(b, n)·w(k, n): B(n, k) = w[k·o + n].
        self.matmul_acc(dinp, i, view(dout, o, 1)?, view(w, 1, o)?, b, i, o)?;
        self.matmul_tn_acc(dw, inp, dout, i, o, b, i, o)?;
        self.colsum_acc(dbias, dout, b, o, o)
    }

    /// c[M, N] (row stride ldc) += A·B over k, one GEMM tile per block.
    #[allow(clippy::too_many_arguments)]
    fn matmul_acc(
        &self,
        c: &mut Buf,
        ldc: usize,
        a: View<'_>,
        b: View<'_>,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()> {
        assert!(
            c.len() >= m.saturating_sub(1) * ldc + n,
            "matmul_acc: c holds {} floats, not {m} × {n} at row stride {ldc}",
            c.len()
        );
        if m == 0 || n == 0 || k == 0 {
            return Ok(());
        }
        let [ldc, m, n, k] = ints([ldc, m, n, k])?;
        self.launch("matmul_acc", grid_tiles(m as usize, n as usize, 1), |l| {
            l.arg(c).arg(&ldc);
            a.push(l);
            b.push(l);
            l.arg(&m).arg(&n).arg(&k);
        })
    }

    /// c[M, N] += aᵀ·b over `k` rows (a row stride lda, b row stride ldb): split-K, each range of
    /// SPLIT_ROWS rows one tile product, the ranges then added in order.
    #[allow(clippy::too_many_arguments)]
    fn matmul_tn_acc(
        &self,
        c: &mut Buf,
        a: &Buf,
        b: &Buf,
        m: usize,
        n: usize,
        k: usize,
        lda: usize,
        ldb: usize,
    ) -> Result<()> {
        assert!(
            c.len() >= m * n && a.len() >= k * lda && b.len() >= k * ldb,
            "matmul_tn_acc: a buffer is too short for {m} × {n} over {k} rows"
        );
        if m == 0 || n == 0 || k == 0 {
            return Ok(());
        }
        let z = splits(k);
        let mut partial = self.scratch(z * m * n)?;
        // A(m, k) = a[k·lda + m], B(k, n) = b[k·ldb + n].
        let (av, bv) = (view(a, 1, lda)?, view(b, ldb, 1)?);
        let [m32, n32, k32] = ints([m, n, k])?;
        let mut cfg = grid_tiles(m, n, 1);
        cfg.grid_dim.2 = z as u32;
        self.launch("matmul_splitk", cfg, |l| {
            l.arg(&mut partial);
            av.push(l);
            bv.push(l);
            l.arg(&m32).arg(&n32).arg(&k32);
        })?;
        self.splitk_combine(c, &partial, m * n, m * n, z, 1.0, true)
    }

    /// out[0..n] += Σ over `rows` rows of a (row stride lda).
    fn colsum_acc<O>(&self, out: &mut O, a: &Buf, rows: usize, n: usize, lda: usize) -> Result<()>
    where
        O: DevicePtrMut<f32> + DeviceSlice<f32>,
    {
        self.column_sums(out, a, None, rows, n, lda, 1.0, true)
    }

    /// out[col] = (accumulate ? out[col] : 0) + scale·Σ_r f(a[r·lda + col]) for col < n, with
    /// f(x) = x, or (x − center[col])² when a center is given: per chunk of SPLIT_ROWS rows, then
    /// the chunks in order.
    #[allow(clippy::too_many_arguments)]
    fn column_sums<O>(
        &self,
        out: &mut O,
        a: &Buf,
        center: Option<&Buf>,
        rows: usize,
        n: usize,
        lda: usize,
        scale: f32,
        accumulate: bool,
    ) -> Result<()>
    where
        O: DevicePtrMut<f32> + DeviceSlice<f32>,
    {
        assert!(
            out.len() >= n && a.len() >= rows.saturating_sub(1) * lda + n,
            "column_sums: a buffer is too short for {rows} rows × {n} columns"
        );
        let z = splits(rows).max(1);
        let mut partial = self.scratch(z * n)?;
        let [r32, n32, lda] = ints([rows, n, lda])?;
        let (center_ptr, _sync) = self.optional_ptr(center);
        self.launch("column_partials", chunked_columns(n, z), |l| {
            l.arg(&mut partial)
                .arg(a)
                .arg(&center_ptr)
                .arg(&r32)
                .arg(&n32)
                .arg(&lda);
        })?;
        self.splitk_combine(out, &partial, n, n, z, scale, accumulate)
    }

    /// c[i] = (accumulate ? c[i] : 0) + scale·Σ_z partial[z·stride + i] for i < len, z in order.
    #[allow(clippy::too_many_arguments)]
    fn splitk_combine<O, P>(
        &self,
        c: &mut O,
        partial: &P,
        len: usize,
        stride: usize,
        splits: usize,
        scale: f32,
        accumulate: bool,
    ) -> Result<()>
    where
        O: DevicePtrMut<f32> + DeviceSlice<f32>,
        P: DevicePtr<f32> + DeviceSlice<f32>,
    {
        assert!(
            c.len() >= len && partial.len() >= splits.saturating_sub(1) * stride + len,
            "splitk_combine: a buffer is too short for {splits} parts of {len}"
        );
        let [len32, stride, z] = ints([len, stride, splits])?;
        let acc = i32::from(accumulate);
        // Raw pointers, so that buffers and views of either mutability go through one wrapper;
        // the guards keep the stream ordered with the buffers' other uses.
        let (c_ptr, _c_sync) = c.device_ptr_mut(&self.stream);
        let (p_ptr, _p_sync) = partial.device_ptr(&self.stream);
        self.launch("splitk_combine", grid1(len), |l| {
            l.arg(&c_ptr)
                .arg(&p_ptr)
                .arg(&len32)
                .arg(&stride)
                .arg(&z)
                .arg(&scale)
                .arg(&acc);
        })
    }

    // ---- recurrent layers ---------------------------------------------------------------------

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
        assert!(
            bias.len() >= g && h_out.len() >= b * h && cache.len() >= b * s * 7 * h,
            "lstm_forward: a buffer is too short for b = {b}, s = {s}, h = {h}"
        );
        let zx = self.input_projection(x, w_ih, w_hh, bias, b * s, i, h, g)?;
        let [nb, ns, nh] = ints([b, s, h])?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (g + 2 * h));
        self.launch("lstm_forward", cfg, |l| {
            l.arg(h_out)
                .arg(cache)
                .arg(&zx)
                .arg(w_hh)
                .arg(&nb)
                .arg(&ns)
                .arg(&nh);
        })
    }

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
        assert!(
            bias.len() >= 2 * g && h_out.len() >= b * h && cache.len() >= b * s * 5 * h,
            "gru_forward: a buffer is too short for b = {b}, s = {s}, h = {h}"
        );
        // The input bias row b_ih goes into zx; the kernel adds the recurrent row b_hh to h·U.
        let zx = self.input_projection(x, w_ih, w_hh, bias, b * s, i, h, g)?;
        let [nb, ns, nh] = ints([b, s, h])?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (2 * g + h));
        self.launch("gru_forward", cfg, |l| {
            l.arg(h_out)
                .arg(cache)
                .arg(&zx)
                .arg(w_hh)
                .arg(bias)
                .arg(&nb)
                .arg(&ns)
                .arg(&nh);
        })
    }

    /// zx [rows, G] = x [rows, I]·w_ih [I, G] + bias[..G]: a recurrent layer's input side for all
    /// (sample, step) rows at once, leaving only h·U to the step-by-step kernel.
    #[allow(clippy::too_many_arguments)]
    fn input_projection(
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
        assert!(
            x.len() >= rows * i && w_ih.len() >= i * g && w_hh.len() >= h * g,
            "recurrent forward: x or a weight is too short for {rows} rows, i = {i}, h = {h}"
        );
        let mut zx = self.scratch(rows * g)?;
        self.dense_forward(&mut zx, x, w_ih, bias, rows, i, g)?;
        Ok(zx)
    }

    /// LSTM backward through time; accumulates into dx, dw_ih, dw_hh, dbias.
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_backward(
        &self,
        dx: &mut Buf,
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
        assert!(
            dx.len() >= rows * i
                && x.len() >= rows * i
                && cache.len() >= rows * 7 * h
                && dh_out.len() >= b * h
        );
        assert!(
            dw_ih.len() >= i * g
                && dw_hh.len() >= h * g
                && dbias.len() >= g
                && w_ih.len() >= i * g
                && w_hh.len() >= h * g
        );
        let mut dz = self.scratch(rows * g)?;
        let mut hprev = self.scratch(rows * h)?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (g + 2 * h));
        let [nb, ns, nh] = ints([b, s, h])?;
        self.launch("lstm_backward_steps", cfg, |l| {
            l.arg(&mut dz)
                .arg(&mut hprev)
                .arg(dh_out)
                .arg(cache)
                .arg(w_hh)
                .arg(&nb)
                .arg(&ns)
                .arg(&nh);
        })?;
        // dx(row, c) += Σ_j dz(row, j)·w_ih(c, j): one GEMM over all B·S rows.
        self.matmul_acc(dx, i, view(&dz, g, 1)?, view(w_ih, 1, g)?, rows, i, g)?;
        self.matmul_tn_acc(dw_ih, x, &dz, i, g, rows, i, g)?;
        self.matmul_tn_acc(dw_hh, &hprev, &dz, h, g, rows, h, g)?;
        self.colsum_acc(&mut dbias.slice_mut(..g), &dz, rows, g, g)
    }

    /// GRU backward through time; accumulates into dx, dw_ih, dw_hh, dbias [2, 3H].
    #[allow(clippy::too_many_arguments)]
    pub fn gru_backward(
        &self,
        dx: &mut Buf,
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
        assert!(
            dx.len() >= rows * i
                && x.len() >= rows * i
                && cache.len() >= rows * 5 * h
                && dh_out.len() >= b * h
        );
        assert!(
            dw_ih.len() >= i * g
                && dw_hh.len() >= h * g
                && dbias.len() >= 2 * g
                && w_ih.len() >= i * g
                && w_hh.len() >= h * g
        );
        let mut dzx = self.scratch(rows * g)?;
        let mut dzh = self.scratch(rows * g)?;
        let mut hprev = self.scratch(rows * h)?;
        let cfg = rnn_config(b, g, h * g + RNN_SAMPLES * (2 * g + h));
        let [nb, ns, nh] = ints([b, s, h])?;
        self.launch("gru_backward_steps", cfg, |l| {
            l.arg(&mut dzx)
                .arg(&mut dzh)
                .arg(&mut hprev)
                .arg(dh_out)
                .arg(cache)
                .arg(w_hh)
                .arg(&nb)
                .arg(&ns)
                .arg(&nh);
        })?;
        self.matmul_acc(dx, i, view(&dzx, g, 1)?, view(w_ih, 1, g)?, rows, i, g)?;
        self.matmul_tn_acc(dw_ih, x, &dzx, i, g, rows, i, g)?;
        self.matmul_tn_acc(dw_hh, &hprev, &dzh, h, g, rows, h, g)?;
        self.colsum_acc(&mut dbias.slice_mut(..g), &dzx, rows, g, g)?;
        self.colsum_acc(&mut dbias.slice_mut(g..2 * g), &dzh, rows, g, g)
    }

    // ---- element-wise -------------------------------------------------------------------------

    pub fn relu_forward(&self, out: &mut Buf, inp: &Buf, n: usize) -> Result<()> {
        assert!(out.len() >= n && inp.len() >= n);
        let n32 = int(n)?;
        self.launch("relu_forward", grid1(n), |l| {
            l.arg(out).arg(inp).arg(&n32);
        })
    }

    pub fn relu_backward(&self, dinp: &mut Buf, dout: &Buf, inp: &Buf, n: usize) -> Result<()> {
        assert!(dinp.len() >= n && dout.len() >= n && inp.len() >= n);
        let n32 = int(n)?;
        self.launch("relu_backward", grid1(n), |l| {
            l.arg(dinp).arg(dout).arg(inp).arg(&n32);
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
        assert!(out.len() >= n && mask.len() >= n && inp.len() >= n);
        let n32 = int(n)?;
        self.launch("dropout_forward", grid1(n), |l| {
            l.arg(out).arg(mask).arg(inp).arg(&n32).arg(&p).arg(&seed);
        })
    }

    pub fn dropout_backward(&self, dinp: &mut Buf, dout: &Buf, mask: &Buf, n: usize) -> Result<()> {
        assert!(dinp.len() >= n && dout.len() >= n && mask.len() >= n);
        let n32 = int(n)?;
        self.launch("dropout_backward", grid1(n), |l| {
            l.arg(dinp).arg(dout).arg(mask).arg(&n32);
        })
    }

    /// One input `[rows, width]` of a `[rows, total]` concatenation, placed at column `col`.
    #[allow(clippy::too_many_arguments)]
    pub fn concat_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        assert!(col + width <= total && out.len() >= rows * total && inp.len() >= rows * width);
        let [r, w, t, c] = ints([rows, width, total, col])?;
        self.launch("concat_forward", grid1(rows * width), |l| {
            l.arg(out).arg(inp).arg(&r).arg(&w).arg(&t).arg(&c);
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn concat_backward(
        &self,
        dinp: &mut Buf,
        dout: &Buf,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        assert!(col + width <= total && dout.len() >= rows * total && dinp.len() >= rows * width);
        let [r, w, t, c] = ints([rows, width, total, col])?;
        self.launch("concat_backward", grid1(rows * width), |l| {
            l.arg(dinp).arg(dout).arg(&r).arg(&w).arg(&t).arg(&c);
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
        assert!(params.len() >= n && m.len() >= n && v.len() >= n && grad.len() >= n);
        let n32 = int(n)?;
        self.launch("adam_update", grid1(n), |l| {
            l.arg(params)
                .arg(m)
                .arg(v)
                .arg(grad)
                .arg(&n32)
                .arg(&lr_t)
                .arg(&beta1)
                .arg(&beta2)
                .arg(&eps);
        })
    }

    /// The L2 term of one tensor θ [n]: grad += coef·θ and sumsq[0] = Σ θ² (the CPU's
    /// `ParamStore::l2_penalty` for one tensor, coef = 2·l2; the host multiplies Σ θ² by l2).
    pub fn l2_penalty(
        &self,
        grad: &mut Buf,
        sumsq: &mut cudarc::driver::CudaViewMut<'_, f32>,
        theta: &Buf,
        n: usize,
        coef: f32,
    ) -> Result<()> {
        assert!(
            grad.len() >= n && theta.len() >= n && !sumsq.is_empty(),
            "l2_penalty: grad, theta must hold n = {n} floats and sumsq one"
        );
        let n32 = int(n)?;
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        self.launch("l2_penalty", cfg, |l| {
            l.arg(grad).arg(sumsq).arg(theta).arg(&n32).arg(&coef);
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
        assert!(out.len() >= b * per);
        let (n, nb) = (int(n_stocks)?, int(b)?);
        self.launch("gather_pictures", grid1(b * per), |l| {
            l.arg(features).arg(&n).arg(samples).arg(&nb).arg(out);
        })
    }

    // ---- losses -------------------------------------------------------------------------------

    /// L = Σ w_i (ŷ_i − y_i)² / N (w = 1 without weights), returned; dpred = 2w(ŷ − y)/N, written.
    pub fn mse_loss(
        &self,
        dpred: &mut Buf,
        pred: &Buf,
        y: &Buf,
        w: Option<&Buf>,
        n: usize,
    ) -> Result<f32> {
        let partials = self.mse_loss_partials(dpred, pred, y, w, n)?;
        Ok(mse_from_partials(&self.download(&partials)?, n))
    }

    /// [`Self::mse_loss`] without the download: dpred is written and the per-block partial sums
    /// of the loss stay on the device ([`mse_from_partials`] turns them into the loss).
    pub(crate) fn mse_loss_partials(
        &self,
        dpred: &mut Buf,
        pred: &Buf,
        y: &Buf,
        w: Option<&Buf>,
        n: usize,
    ) -> Result<Buf> {
        assert!(
            dpred.len() >= n && pred.len() >= n && y.len() >= n && w.is_none_or(|w| w.len() >= n)
        );
        let mut partials = self.scratch(blocks(n, BLOCK) as usize)?;
        let n32 = int(n)?;
        let (w_ptr, _w_sync) = self.optional_ptr(w);
        self.launch("mse_loss", grid1(n), |l| {
            l.arg(dpred)
                .arg(pred)
                .arg(y)
                .arg(&w_ptr)
                .arg(&n32)
                .arg(&mut partials);
        })?;
        Ok(partials)
    }

    /// The v2.2 neutralized MSE over the date groups delimited by `offsets` [n_groups + 1]
    /// (styles [N, K], K ≤ MAX_STYLES), see kernels/loss.cu; dpred is written.
    #[allow(clippy::too_many_arguments)]
    pub fn neutralized_mse_loss(
        &self,
        dpred: &mut Buf,
        pred: &Buf,
        y: &Buf,
        w: Option<&Buf>,
        styles: &Buf,
        offsets: &CudaSlice<i32>,
        n: usize,
        k: usize,
    ) -> Result<NeutralizedLoss<f32>> {
        let partials =
            self.neutralized_mse_loss_partials(dpred, pred, y, w, styles, offsets, n, k)?;
        Ok(neutralized_from_partials(&self.download(&partials)?, n))
    }

    /// [`Self::neutralized_mse_loss`] without the download: dpred is written and the per-group
    /// losses and fallback flags [2 · groups] stay on the device ([`neutralized_from_partials`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn neutralized_mse_loss_partials(
        &self,
        dpred: &mut Buf,
        pred: &Buf,
        y: &Buf,
        w: Option<&Buf>,
        styles: &Buf,
        offsets: &CudaSlice<i32>,
        n: usize,
        k: usize,
    ) -> Result<Buf> {
        if k > MAX_STYLES {
            return Err(Error::Config(format!(
                "the neutralized loss takes at most {MAX_STYLES} style factors, got {k}"
            )));
        }
        assert!(
            offsets.len() >= 2
                && dpred.len() >= n
                && pred.len() >= n
                && y.len() >= n
                && styles.len() >= n * k
                && w.is_none_or(|w| w.len() >= n)
        );
        let groups = offsets.len() - 1;
        let mut partials = self.scratch(2 * groups)?;
        let [n32, k32] = ints([n, k])?;
        let (w_ptr, _w_sync) = self.optional_ptr(w);
        let cfg = LaunchConfig {
            grid_dim: (groups as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        self.launch("neutralized_mse_loss", cfg, |l| {
            l.arg(dpred)
                .arg(pred)
                .arg(y)
                .arg(&w_ptr)
                .arg(styles)
                .arg(offsets)
                .arg(&n32)
                .arg(&k32)
                .arg(&mut partials);
        })?;
        Ok(partials)
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

/// The mean squared error from `mse_loss`'s per-block partial sums, added in block order.
pub(crate) fn mse_from_partials(partials: &[f32], n: usize) -> f32 {
    partials.iter().sum::<f32>() * (1.0 / n as f32)
}

/// The neutralized loss from its per-group partials [losses…, fallback flags…].
pub(crate) fn neutralized_from_partials(partials: &[f32], n: usize) -> NeutralizedLoss<f32> {
    let (losses, fallback) = partials.split_at(partials.len() / 2);
    NeutralizedLoss {
        loss: losses.iter().sum::<f32>() * (1.0 / n as f32),
        fallback_groups: fallback.iter().filter(|&&f| f > 0.0).count(),
    }
}

// ---- input normalisation ------------------------------------------------------------------------

impl Gpu {
    /// out `[B, 15, 30]` = each picture of inp rescaled (src/ops/normalize.rs).
    pub fn normalize_pictures(&self, out: &mut Buf, inp: &Buf, b: usize) -> Result<()> {
        let n = b * PICTURE_FEATURES * PICTURE_DAYS;
        assert!(
            inp.len() >= n && out.len() >= n,
            "normalize_pictures: inp holds {} and out {} floats, b·15·30 = {n}",
            inp.len(),
            out.len()
        );
        let nb = int(b)?;
        self.launch("normalize_pictures", grid1(b * PICTURE_FEATURES), |l| {
            l.arg(out).arg(inp).arg(&nb);
        })
    }
}
