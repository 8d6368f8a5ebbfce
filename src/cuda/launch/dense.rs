//! kernels/dense.cu (+ gemm.cuh): the dense layer and the GEMM helpers the other backward
//! passes share: `matmul_acc`, split-K `matmul_tn_acc`, the chunked column sums and
//! `splitk_combine`.

use crate::cuda::context::Kernel;
use cudarc::driver::{DevicePtr, DevicePtrMut, DeviceSlice};

use super::{chunked_columns, grid1, grid_tiles, ints, splits, view, Buf, Gpu, View};
use crate::error::Result;

impl Gpu {
    /// out [B, O] = inp [B, I]·w [I, O] + bias [O].
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
        check!(
            "dense_forward",
            inp >= b * i,
            w >= i * o,
            bias >= o,
            out >= b * o,
        );
        let [nb, ni, no] = ints([b, i, o])?;
        self.launch(Kernel::DenseForward, grid_tiles(b, o, 1), |l| {
            args!(l, out, inp, w, bias, &nb, &ni, &no);
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
        check!(
            "dense_backward",
            inp >= b * i,
            dinp >= b * i,
            w >= i * o,
            dw >= i * o,
            dbias >= o,
            dout >= b * o,
        );
        // dinp(b, k) += Σ_n dout(b, n)·w(k, n): B(n, k) = w[k·o + n].
        self.matmul_acc(dinp, i, view(dout, o, 1)?, view(w, 1, o)?, b, i, o)?;
        self.matmul_tn_acc(dw, inp, dout, i, o, b, i, o)?;
        self.colsum_acc(dbias, dout, b, o, o)
    }

    /// c[M, N] (row stride ldc) += A·B over k, one GEMM tile per block.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn matmul_acc(
        &self,
        c: &mut Buf,
        ldc: usize,
        a: View<'_>,
        b: View<'_>,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()> {
        check!("matmul_acc", c >= m.saturating_sub(1) * ldc + n);
        if m == 0 || n == 0 || k == 0 {
            return Ok(());
        }
        let [ldc, m, n, k] = ints([ldc, m, n, k])?;
        self.launch(
            Kernel::MatmulAcc,
            grid_tiles(m as usize, n as usize, 1),
            |l| {
                args!(l, c, &ldc);
                a.push(l);
                b.push(l);
                args!(l, &m, &n, &k);
            },
        )
    }

    /// c[M, N] += aᵀ·b over `k` rows (a row stride lda, b row stride ldb): split-K, each range of
    /// SPLIT_ROWS rows one tile product, the ranges then added in order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn matmul_tn_acc(
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
        check!("matmul_tn_acc", c >= m * n, a >= k * lda, b >= k * ldb);
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
        self.launch(Kernel::MatmulSplitk, cfg, |l| {
            args!(l, &mut partial);
            av.push(l);
            bv.push(l);
            args!(l, &m32, &n32, &k32);
        })?;
        self.splitk_combine(c, &partial, m * n, m * n, z, 1.0, true)
    }

    /// out[0..n] += Σ over `rows` rows of a (row stride lda).
    pub(super) fn colsum_acc<O>(
        &self,
        out: &mut O,
        a: &Buf,
        rows: usize,
        n: usize,
        lda: usize,
    ) -> Result<()>
    where
        O: DevicePtrMut<f32> + DeviceSlice<f32>,
    {
        self.column_sums(out, a, None, rows, n, lda, 1.0, true)
    }

    /// out[col] = (accumulate ? out[col] : 0) + scale·Σ_r f(a[r·lda + col]) for col < n, with
    /// f(x) = x, or (x − center[col])² when a center is given: per chunk of SPLIT_ROWS rows, then
    /// the chunks in order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn column_sums<O>(
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
        check!(
            "column_sums",
            out >= n,
            a >= rows.saturating_sub(1) * lda + n,
        );
        let z = splits(rows).max(1);
        let mut partial = self.scratch(z * n)?;
        let [r32, n32, lda] = ints([rows, n, lda])?;
        let (center_ptr, _sync) = self.optional_ptr(center);
        self.launch(Kernel::ColumnPartials, chunked_columns(n, z), |l| {
            args!(l, &mut partial, a, &center_ptr, &r32, &n32, &lda);
        })?;
        self.splitk_combine(out, &partial, n, n, z, scale, accumulate)
    }

    /// c[i] = (accumulate ? c[i] : 0) + scale·Σ_z partial[z·stride + i] for i < len, z in order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn splitk_combine<O, P>(
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
        check!(
            "splitk_combine",
            c >= len,
            partial >= splits.saturating_sub(1) * stride + len,
        );
        let [len32, stride, z] = ints([len, stride, splits])?;
        let acc = i32::from(accumulate);
        // Raw pointers, so that buffers and views of either mutability go through one wrapper;
        // the guards keep the stream ordered with the buffers' other uses.
        let (c_ptr, _c_sync) = c.device_ptr_mut(&self.stream);
        let (p_ptr, _p_sync) = partial.device_ptr(&self.stream);
        self.launch(Kernel::SplitkCombine, grid1(len), |l| {
            args!(l, &c_ptr, &p_ptr, &len32, &stride, &z, &scale, &acc);
        })
    }
}
