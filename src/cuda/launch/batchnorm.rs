//! kernels/batchnorm.cu: batch normalisation over rows, the sums over rows two-phase (per chunk
//! of SPLIT_ROWS rows, then the chunks in order, `splitk_combine` in dense.rs).

use super::{chunked_columns, grid1, int, ints, splits, Buf, Gpu, Owned};
use crate::cuda::context::Kernel;
use crate::error::Result;

impl Gpu {
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
        check!(
            "batchnorm_forward",
            inp >= r * c,
            out >= r * c,
            mean >= c,
            var >= c,
            gamma >= c,
            beta >= c,
        );
        // CPU: mean = Σx · inv_r with inv_r = 1/r rounded once from f64.
        let inv_r = (1.0 / r as f64) as f32;
        self.column_sums(mean, inp, None, r, c, c, inv_r, false)?;
        self.column_sums(var, inp, Some(&*mean), r, c, c, inv_r, false)?;
        self.batchnorm_inference(out, inp, gamma, beta, mean, var, r, c, eps)
    }

    /// Inference: out = γ·(x − moving_mean)/√(moving_var + ε) + β, element by element.
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
        check!(
            "batchnorm_inference",
            inp >= r * c,
            out >= r * c,
            moving_mean >= c,
            moving_var >= c,
        );
        let (nr, nc) = (int(r)?, int(c)?);
        self.launch(Kernel::BatchnormInference, grid1(r * c), |l| {
            args!(l, out, inp, gamma, beta, moving_mean, moving_var);
            args!(l, &nr, &nc, &eps);
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
        check!("batchnorm_backward", dinp >= r * c, gamma >= c);
        let sums = self.batchnorm_param_grads(dgamma, dbeta, dout, inp, mean, var, r, c, eps)?;
        let (nr, nc) = (int(r)?, int(c)?);
        self.launch(Kernel::BatchnormBackwardApply, grid1(r * c), |l| {
            args!(l, dinp, dout, inp, mean, var, gamma, &sums, &nr, &nc, &eps);
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
    ) -> Result<Owned> {
        check!(
            "batchnorm_param_grads",
            inp >= r * c,
            dout >= r * c,
            dgamma >= c,
            dbeta >= c,
            mean >= c,
            var >= c,
        );
        let z = splits(r);
        let mut partial = self.scratch(z * 2 * c)?;
        let (nr, nc) = (int(r)?, int(c)?);
        self.launch(
            Kernel::BatchnormBackwardPartials,
            chunked_columns(c, z),
            |l| {
                args!(l, &mut partial, dout, inp, mean, var, &nr, &nc, &eps);
            },
        )?;
        let mut sums = self.scratch(2 * c)?;
        self.splitk_combine(&mut sums, &partial, 2 * c, 2 * c, z, 1.0, false)?;
        self.splitk_combine(dbeta, &partial, c, 2 * c, z, 1.0, true)?;
        self.splitk_combine(dgamma, &partial.slice(c..), c, 2 * c, z, 1.0, true)?;
        Ok(sums)
    }

    /// moving = momentum·moving + (1 − momentum)·batch, for the mean and the variance.
    pub fn batchnorm_update_moving(
        &self,
        moving_mean: &mut Buf,
        moving_var: &mut Buf,
        mean: &Buf,
        var: &Buf,
        c: usize,
        momentum: f64,
    ) -> Result<()> {
        check!(
            "batchnorm_update_moving",
            moving_mean >= c,
            moving_var >= c,
            mean >= c,
            var >= c,
        );
        let nc = int(c)?;
        self.launch(Kernel::BatchnormUpdateMoving, grid1(c), |l| {
            args!(l, moving_mean, moving_var, mean, var, &nc, &momentum);
        })
    }

    /// BN(data) → recurrent layer's parameter gradients from the layer's run on x̂ (nmat, db_local),
    /// without its input gradient: the CPU's `bn_recurrent_fold`.
    #[allow(clippy::too_many_arguments)]
    pub fn bn_recurrent_fold(
        &self,
        dgamma: &mut Buf,
        dbeta: &mut Buf,
        dwi: &mut Buf,
        db: &mut Buf,
        nmat: &Buf,
        db_local: &Buf,
        gamma: &Buf,
        beta: &Buf,
        wi: &Buf,
        c: usize,
        g: usize,
    ) -> Result<()> {
        let nb = db_local.len();
        check!(
            "bn_recurrent_fold",
            dgamma >= c,
            dbeta >= c,
            gamma >= c,
            beta >= c,
            dwi >= c * g,
            nmat >= c * g,
            wi >= c * g,
            db >= nb,
            db_local >= g,
        );
        let [nc, ng, nnb] = ints([c, g, nb])?;
        self.launch(Kernel::BnRecurrentFold, grid1(c.max(nb)), |l| {
            args!(l, dgamma, dbeta, dwi, db, nmat, db_local, gamma, beta, wi);
            args!(l, &nc, &ng, &nnb);
        })
    }
}
