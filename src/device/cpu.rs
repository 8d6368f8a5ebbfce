//! The CPU backend: every op is the reference op of `src/ops/*`, on host slices, in `T` (f32 for
//! training, f64 for gradient checks).

use super::{disjoint_mut, Batch, Device, DeviceBatch, Params};
use crate::autograd::adam::{adam_step, AdamConfig};
use crate::autograd::params::{ParamEntry, ParamId, ParamStore};
use crate::ops::elementwise::Activation;
use crate::ops::loss::LossConfig;
use crate::ops::loss::{mse_loss, neutralized_mse_loss};
use crate::ops::recurrent::Recurrent;
use crate::ops::ts_features::FeatureSpec;
use crate::ops::{batchnorm, dense, elementwise, normalize, pooling, recurrent_ops, ts_features};

use crate::util::float::Float;
use crate::Result;
use std::marker::PhantomData;

/// The host, computing in `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu<T>(PhantomData<T>);

impl<T> Cpu<T> {
    pub const fn new() -> Self {
        Cpu(PhantomData)
    }
}

impl<T: Float> Params<Cpu<T>> for ParamStore<T> {
    fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    fn value(&self, id: ParamId) -> &[T] {
        self.get(id)
    }

    fn value_and_grads<const N: usize>(&mut self, ids: [ParamId; N]) -> ([&[T]; N], [&mut [T]; N]) {
        let ranges = ids.map(|id| self.entries[id.0].range.clone());
        let values = ranges.clone().map(|r| &self.data[r]);
        (values, disjoint_mut(&mut self.grad, ranges))
    }
}

/// The empty slice by which the CPU ops are told to skip an input gradient.
fn or_empty<T>(d: Option<&mut [T]>) -> &mut [T] {
    d.unwrap_or(&mut [])
}

#[allow(clippy::too_many_arguments)]
impl<T: Float> Device for Cpu<T> {
    type T = T;
    type Slice = [T];
    type Buf = Vec<T>;
    type Spec = FeatureSpec;
    type Params = ParamStore<T>;
    type Groups = ();
    type Pending = (f64, usize);

    fn scope<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        rayon::scope(|_| f())
    }

    fn describe(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn len(x: &[T]) -> usize {
        x.len()
    }

    fn zeros(&self, n: usize) -> Result<Vec<T>> {
        Ok(vec![T::zero(); n])
    }

    fn upload(&self, host: &[T]) -> Result<Vec<T>> {
        Ok(host.to_vec())
    }

    fn download(&self, x: &[T]) -> Result<Vec<T>> {
        Ok(x.to_vec())
    }

    fn copy(&self, x: &[T]) -> Result<Vec<T>> {
        Ok(x.to_vec())
    }

    fn params(&self, entries: &[ParamEntry], flat: [&[T]; 4], step: u64) -> Result<ParamStore<T>> {
        let [data, grad, m, v] = flat.map(<[T]>::to_vec);
        Ok(ParamStore {
            data,
            grad,
            m,
            v,
            entries: entries.to_vec(),
            step,
        })
    }

    fn params_to_host(&self, p: &ParamStore<T>) -> Result<([Vec<T>; 4], u64)> {
        Ok((
            [p.data.clone(), p.grad.clone(), p.m.clone(), p.v.clone()],
            p.step,
        ))
    }

    fn copy_params(&self, p: &ParamStore<T>) -> Result<ParamStore<T>> {
        Ok(p.clone())
    }

    fn zero_grad(&self, p: &mut ParamStore<T>) -> Result<()> {
        p.zero_grad();
        Ok(())
    }

    fn l2_penalty(&self, p: &mut ParamStore<T>) -> Result<(f64, usize)> {
        Ok((p.l2_penalty(true), 0))
    }

    fn adam_step(&self, p: &mut ParamStore<T>, cfg: &AdamConfig) -> Result<()> {
        adam_step(p, cfg);
        Ok(())
    }

    fn feature_spec(&self, spec: &FeatureSpec) -> Result<FeatureSpec> {
        Ok(spec.clone())
    }

    fn spec_dims(spec: &FeatureSpec) -> &FeatureSpec {
        spec
    }

    fn batch(&self, host: &Batch<T>, x: Vec<T>) -> Result<DeviceBatch<Self>> {
        Ok(DeviceBatch {
            n: host.len(),
            x,
            y: host.y.clone(),
            w: host.w.clone(),
            styles: host.styles.clone(),
            k: host.k,
            offsets: host.offsets.clone(),
            groups: (),
        })
    }

    fn normalize_pictures(&self, out: &mut [T], inp: &[T], b: usize) -> Result<()> {
        normalize::normalize_pictures(out, inp, b);
        Ok(())
    }

    fn ts_features_forward(
        &self,
        out: &mut [T],
        inp: &[T],
        b: usize,
        spec: &FeatureSpec,
    ) -> Result<()> {
        ts_features::ts_features_forward(out, inp, b, spec);
        Ok(())
    }

    fn pool_forward(
        &self,
        out: &mut [T],
        inp: &[T],
        b: usize,
        steps: usize,
        channels: usize,
        window: usize,
        stride: usize,
    ) -> Result<()> {
        pooling::pool_forward(out, inp, b, steps, channels, window, stride);
        Ok(())
    }

    fn pool_backward(
        &self,
        dinp: &mut [T],
        dout: &[T],
        inp: &[T],
        b: usize,
        steps: usize,
        channels: usize,
        window: usize,
        stride: usize,
    ) -> Result<()> {
        pooling::pool_backward(dinp, dout, inp, b, steps, channels, window, stride);
        Ok(())
    }

    fn batchnorm_forward(
        &self,
        out: &mut [T],
        mean: &mut [T],
        var: &mut [T],
        inp: &[T],
        gamma: &[T],
        beta: &[T],
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()> {
        batchnorm::batchnorm_forward(out, mean, var, inp, gamma, beta, r, c, eps);
        Ok(())
    }

    fn batchnorm_inference(
        &self,
        out: &mut [T],
        inp: &[T],
        gamma: &[T],
        beta: &[T],
        moving_mean: &[T],
        moving_var: &[T],
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()> {
        batchnorm::batchnorm_inference(out, inp, gamma, beta, moving_mean, moving_var, r, c, eps);
        Ok(())
    }

    fn batchnorm_backward(
        &self,
        dinp: Option<&mut [T]>,
        dgamma: &mut [T],
        dbeta: &mut [T],
        dout: &[T],
        inp: &[T],
        mean: &[T],
        var: &[T],
        gamma: &[T],
        r: usize,
        c: usize,
        eps: f64,
    ) -> Result<()> {
        batchnorm::batchnorm_backward(
            or_empty(dinp),
            dgamma,
            dbeta,
            dout,
            inp,
            mean,
            var,
            gamma,
            r,
            c,
            eps,
        );
        Ok(())
    }

    fn batchnorm_update_moving(
        &self,
        moving_mean: &mut [T],
        moving_var: &mut [T],
        mean: &[T],
        var: &[T],
        c: usize,
        momentum: f64,
    ) -> Result<()> {
        batchnorm::batchnorm_update_moving(moving_mean, moving_var, mean, var, c, momentum);
        Ok(())
    }

    fn recurrent_cache_len(kind: Recurrent, b: usize, s: usize, h: usize) -> usize {
        (recurrent_ops::<T>(kind).cache_len)(b, s, h)
    }

    fn recurrent_forward(
        &self,
        kind: Recurrent,
        h_out: &mut [T],
        cache: &mut [T],
        x: &[T],
        w_ih: &[T],
        w_hh: &[T],
        bias: &[T],
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()> {
        (recurrent_ops::<T>(kind).forward)(h_out, cache, x, w_ih, w_hh, bias, b, s, i, h);
        Ok(())
    }

    fn recurrent_backward(
        &self,
        kind: Recurrent,
        dx: Option<&mut [T]>,
        [dw_ih, dw_hh, dbias]: [&mut [T]; 3],
        dh_out: &[T],
        cache: &[T],
        x: &[T],
        w_ih: &[T],
        w_hh: &[T],
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()> {
        (recurrent_ops::<T>(kind).backward)(
            or_empty(dx),
            dw_ih,
            dw_hh,
            dbias,
            dh_out,
            cache,
            x,
            w_ih,
            w_hh,
            b,
            s,
            i,
            h,
        );
        Ok(())
    }

    /// With `a = γ·x̂ + β` the layer's input and `dZ` its input-side gate gradients, the BN needs
    /// `dγ_c = Σ_r x̂_rc·(dZ·W_ihᵀ)_rc = Σ_g W_ih[c,g]·N[c,g]` and `dβ_c = Σ_g W_ih[c,g]·q_g`, where
    /// `N = x̂ᵀ·dZ` and `q = Σ_r dZ_r`; and `dW_ih = aᵀ·dZ = γ⊙N + β⊗q`. So running the layer's
    /// backward on `x̂` with no input gradient gives everything, and the largest product of the
    /// step, `dZ·W_ihᵀ` (`[B·S, G] × [G, I]`), is never formed.
    fn bn_recurrent_backward(
        &self,
        kind: Recurrent,
        [dgamma, dbeta, dwi, dwh, db]: [&mut [T]; 5],
        dh_out: &[T],
        cache: &[T],
        bn_inp: &[T],
        _bn_out: &[T],
        mean: &[T],
        var: &[T],
        eps: f64,
        [gamma, beta, wi, wh]: [&[T]; 4],
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()> {
        let mut xhat = vec![T::zero(); b * s * i];
        let (ones, zeros) = (vec![T::one(); i], vec![T::zero(); i]);
        batchnorm::batchnorm_inference(&mut xhat, bn_inp, &ones, &zeros, mean, var, b * s, i, eps);
        let g = wi.len() / i;
        let mut nmat = vec![T::zero(); wi.len()];
        let mut db_local = vec![T::zero(); db.len()];
        (recurrent_ops::<T>(kind).backward)(
            &mut [],
            &mut nmat,
            dwh,
            &mut db_local,
            dh_out,
            cache,
            &xhat,
            wi,
            wh,
            b,
            s,
            i,
            h,
        );
        batchnorm::bn_recurrent_fold(
            dgamma, dbeta, dwi, db, &nmat, &db_local, gamma, beta, wi, i, g,
        );
        Ok(())
    }

    fn dense_forward(
        &self,
        out: &mut [T],
        inp: &[T],
        w: &[T],
        bias: &[T],
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()> {
        dense::dense_forward(out, inp, w, bias, b, i, o);
        Ok(())
    }

    fn dense_backward(
        &self,
        dinp: Option<&mut [T]>,
        dw: &mut [T],
        dbias: &mut [T],
        dout: &[T],
        inp: &[T],
        w: &[T],
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()> {
        dense::dense_backward(or_empty(dinp), dw, dbias, dout, inp, w, b, i, o);
        Ok(())
    }

    fn activation_forward(
        &self,
        act: Activation,
        out: &mut [T],
        inp: &[T],
        n: usize,
    ) -> Result<()> {
        elementwise::activation_forward(act, out, inp, n);
        Ok(())
    }

    fn activation_backward(
        &self,
        act: Activation,
        dinp: &mut [T],
        dout: &[T],
        inp: &[T],
        out: &[T],
        n: usize,
    ) -> Result<()> {
        elementwise::activation_backward(act, dinp, dout, inp, out, n);
        Ok(())
    }

    fn dropout_forward(
        &self,
        out: &mut [T],
        mask: &mut [T],
        inp: &[T],
        n: usize,
        p: f64,
        seed: u64,
    ) -> Result<()> {
        elementwise::dropout_forward(out, mask, inp, n, p, seed);
        Ok(())
    }

    fn dropout_backward(&self, dinp: &mut [T], dout: &[T], mask: &[T], n: usize) -> Result<()> {
        elementwise::dropout_backward(dinp, dout, mask, n);
        Ok(())
    }

    fn concat_forward(
        &self,
        out: &mut [T],
        inp: &[T],
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        elementwise::concat_forward(out, inp, rows, width, total, col);
        Ok(())
    }

    fn concat_backward(
        &self,
        dinp: &mut [T],
        dout: &[T],
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        elementwise::concat_backward(dinp, dout, rows, width, total, col);
        Ok(())
    }

    fn loss(
        &self,
        dpred: &mut [T],
        pred: &[T],
        batch: &DeviceBatch<Self>,
        loss: &LossConfig,
    ) -> Result<(f64, usize)> {
        let n = batch.n;
        let w = loss.long_weight.map(|_| &batch.w[..]);
        Ok(if loss.neutralize {
            let r = neutralized_mse_loss(
                dpred,
                pred,
                &batch.y,
                w,
                &batch.styles,
                &batch.offsets,
                n,
                batch.k,
            );
            (r.loss.f64(), r.fallback_groups)
        } else {
            (mse_loss(dpred, pred, &batch.y, w, n).f64(), 0)
        })
    }

    fn read(&self, p: (f64, usize)) -> Result<(f64, usize)> {
        Ok(p)
    }
}
