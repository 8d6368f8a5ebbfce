//! kernels/loss.cu: the losses, value and gradient in one pass; the value returned as the CPU
//! ones do (one small download of the partials, summed on the host in order).

use crate::cuda::context::Kernel;
use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{blocks, grid1, int, ints, Buf, Gpu, Owned, BLOCK, MAX_STYLES};
use crate::error::{Error, Result};
use crate::ops::loss::NeutralizedLoss;

impl Gpu {
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
    ) -> Result<Owned> {
        check!("mse_loss", dpred >= n, pred >= n, y >= n);
        if let Some(w) = w {
            check!("mse_loss", w >= n);
        }
        let mut partials = self.scratch(blocks(n, BLOCK) as usize)?;
        let n32 = int(n)?;
        let (w_ptr, _w_sync) = self.optional_ptr(w);
        self.launch(Kernel::MseLoss, grid1(n), |l| {
            args!(l, dpred, pred, y, &w_ptr, &n32, &mut partials);
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
    ) -> Result<Owned> {
        if k > MAX_STYLES {
            return Err(Error::Config(format!(
                "the neutralized loss takes at most {MAX_STYLES} style factors, got {k}"
            )));
        }
        assert!(
            offsets.len() >= 2,
            "neutralized_mse_loss: offsets holds {} group bounds, needs at least 2",
            offsets.len()
        );
        check!(
            "neutralized_mse_loss",
            dpred >= n,
            pred >= n,
            y >= n,
            styles >= n * k,
        );
        if let Some(w) = w {
            check!("neutralized_mse_loss", w >= n);
        }
        let groups = offsets.len() - 1;
        let mut partials = self.scratch(2 * groups)?;
        let [n32, k32] = ints([n, k])?;
        let (w_ptr, _w_sync) = self.optional_ptr(w);
        let cfg = LaunchConfig {
            grid_dim: (groups as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        self.launch(Kernel::NeutralizedMseLoss, cfg, |l| {
            args!(l, dpred, pred, y, &w_ptr, styles, offsets);
            args!(l, &n32, &k32, &mut partials);
        })?;
        Ok(partials)
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

/// A scalar the GPU may still be computing: a loss from its partial sums, or the L2 term from the
/// Σθ² of each regularised tensor and its weight.
pub enum Pending {
    Mse(Owned, usize),
    Neutralized(Owned, usize),
    L2(Option<Owned>, Vec<f64>),
}

impl Pending {
    /// The scalar, read back (`Device::read`): its value and, for the neutralized loss, the date
    /// groups that fell back to plain MSE.
    pub fn value(self, gpu: &Gpu) -> Result<(f64, usize)> {
        Ok(match self {
            Pending::Mse(partials, n) => {
                (mse_from_partials(&gpu.download(&partials)?, n) as f64, 0)
            }
            Pending::Neutralized(partials, n) => {
                let r = neutralized_from_partials(&gpu.download(&partials)?, n);
                (r.loss as f64, r.fallback_groups)
            }
            Pending::L2(None, _) => (0.0, 0),
            Pending::L2(Some(sumsq), l2) => {
                let sums = gpu.download(&sumsq)?;
                (l2.iter().zip(sums).map(|(l2, s)| l2 * s as f64).sum(), 0)
            }
        })
    }
}
