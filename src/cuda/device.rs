//! The GPU as a [`Device`]: each op is its launch wrapper (src/cuda/launch/), which takes the
//! CPU op's arguments on device buffers; the parameters are [`GpuParams`] (src/cuda/params.rs).

use super::context::Gpu;
use super::launch::Pending;
use super::params::{layout, GpuParams};
use super::pool::{Buf, Owned, Pooled};
use super::DeviceFeatureSpec;
use crate::autograd::adam::AdamConfig;
use crate::autograd::params::ParamEntry;
use crate::device::Batch;
use crate::device::{Device, DeviceBatch};
use crate::error::{Error, Result};
use crate::ops::elementwise::Activation;
use crate::ops::loss::LossConfig;
use crate::ops::recurrent::Recurrent;
use crate::ops::ts_features::FeatureSpec;
use crate::ops::{gru, lstm};

/// The neutralized loss's date groups as the kernel reads them: offsets [groups + 1] as `int`.
pub struct Groups(Option<Pooled<i32>>);

#[allow(clippy::too_many_arguments)]
impl Device for Gpu {
    type T = f32;
    type Slice = Buf;
    type Buf = Owned;
    type Spec = DeviceFeatureSpec;
    type Params = GpuParams;
    type Groups = Groups;
    type Pending = Pending;

    fn describe(&self) -> String {
        format!("{} (kernels: {})", self.info, self.kernels_from)
    }

    fn len(x: &Buf) -> usize {
        x.len()
    }

    fn zeros(&self, n: usize) -> Result<Owned> {
        Gpu::zeros(self, n)
    }

    fn scratch(&self, n: usize) -> Result<Owned> {
        Gpu::scratch(self, n)
    }

    fn upload(&self, host: &[f32]) -> Result<Owned> {
        if host.is_empty() {
            return Gpu::zeros(self, 1);
        }
        Gpu::upload(self, host)
    }

    fn download(&self, x: &Buf) -> Result<Vec<f32>> {
        Gpu::download(self, x)
    }

    fn copy(&self, x: &Buf) -> Result<Owned> {
        let mut out = Gpu::scratch(self, x.len())?;
        self.stream()
            .memcpy_dtod(x, &mut *out)
            .map_err(Error::cuda)?;
        Ok(out)
    }

    fn params(&self, entries: &[ParamEntry], flat: [&[f32]; 4], step: u64) -> Result<GpuParams> {
        let (ranges, len) = layout(entries);
        let upload = |host: &[f32]| -> Result<Owned> {
            let mut padded = vec![0.0f32; len];
            for (e, r) in entries.iter().zip(&ranges) {
                padded[r.clone()].copy_from_slice(&host[e.range.clone()]);
            }
            Gpu::upload(self, &padded)
        };
        let [data, grad, m, v] = flat.map(upload);
        let flat = [data?, grad?, m?, v?];
        Ok(self.params_from(entries, ranges, flat, step))
    }

    fn params_to_host(&self, p: &GpuParams) -> Result<([Vec<f32>; 4], u64)> {
        let n: usize = p.entries.iter().map(|e| e.range.len()).sum();
        let mut out: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; n]);
        for (host, dev) in out.iter_mut().zip([&p.data, &p.grad, &p.m, &p.v]) {
            let padded = Gpu::download(self, dev)?;
            for (e, r) in p.entries.iter().zip(&p.ranges) {
                host[e.range.clone()].copy_from_slice(&padded[r.clone()]);
            }
        }
        Ok((out, p.step))
    }

    fn copy_params(&self, p: &GpuParams) -> Result<GpuParams> {
        let flat = [
            self.copy(&p.data)?,
            self.copy(&p.grad)?,
            self.copy(&p.m)?,
            self.copy(&p.v)?,
        ];
        Ok(self.params_from(&p.entries, p.ranges.clone(), flat, p.step))
    }

    fn zero_grad(&self, p: &mut GpuParams) -> Result<()> {
        self.stream().memset_zeros(&mut p.grad).map_err(Error::cuda)
    }

    fn l2_penalty(&self, p: &mut GpuParams) -> Result<Pending> {
        let regularised: Vec<(usize, f64)> = (p.entries.iter().enumerate())
            .filter(|(_, e)| e.l2 != 0.0)
            .map(|(k, e)| (k, e.l2))
            .collect();
        if regularised.is_empty() {
            return Ok(Pending::L2(None, vec![]));
        }
        let mut sumsq = Gpu::scratch(self, regularised.len())?;
        for (slot, &(k, l2)) in regularised.iter().enumerate() {
            let n = p.entries[k].range.len();
            self.l2_penalty(
                &mut p.grads[k].0,
                &mut sumsq.slice_mut(slot..slot + 1),
                &p.values[k].0,
                n,
                (2.0 * l2) as f32,
            )?;
        }
        Ok(Pending::L2(
            Some(sumsq),
            regularised.into_iter().map(|(_, l2)| l2).collect(),
        ))
    }

    fn adam_step(&self, p: &mut GpuParams, cfg: &AdamConfig) -> Result<()> {
        p.step += 1;
        let lr_t = cfg.lr_t(p.step) as f32;
        let n = p.data.len();
        self.adam_update(
            &mut p.data,
            &mut p.m,
            &mut p.v,
            &p.grad,
            n,
            lr_t,
            cfg.beta1 as f32,
            cfg.beta2 as f32,
            cfg.eps as f32,
        )
    }

    fn feature_spec(&self, spec: &FeatureSpec) -> Result<DeviceFeatureSpec> {
        Gpu::feature_spec(self, spec)
    }

    fn spec_dims(spec: &DeviceFeatureSpec) -> &FeatureSpec {
        &spec.spec
    }

    fn batch(&self, host: &Batch<f32>, x: Owned) -> Result<DeviceBatch<Self>> {
        let groups = if host.k > 0 {
            let offsets = (host.offsets.iter())
                .map(|&o| {
                    i32::try_from(o).map_err(|_| Error::Cuda(format!("offset {o} exceeds i32")))
                })
                .collect::<Result<Vec<i32>>>()?;
            Some(Gpu::upload(self, &offsets)?)
        } else {
            None
        };
        Ok(DeviceBatch {
            n: host.len(),
            x,
            y: Device::upload(self, &host.y)?,
            w: Device::upload(self, &host.w)?,
            styles: Device::upload(self, &host.styles)?,
            k: host.k,
            offsets: host.offsets.clone(),
            groups: Groups(groups),
        })
    }

    fn normalize_pictures(&self, out: &mut Buf, inp: &Buf, b: usize) -> Result<()> {
        Gpu::normalize_pictures(self, out, inp, b)
    }

    fn ts_features_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        b: usize,
        spec: &DeviceFeatureSpec,
    ) -> Result<()> {
        Gpu::ts_features_forward(self, out, inp, b, spec)
    }

    fn pool_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        b: usize,
        steps: usize,
        channels: usize,
        window: usize,
        stride: usize,
    ) -> Result<()> {
        Gpu::pool_forward(self, out, inp, b, steps, channels, window, stride)
    }

    fn pool_backward(
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
        Gpu::pool_backward(self, dinp, dout, inp, b, steps, channels, window, stride)
    }

    fn batchnorm_forward(
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
        Gpu::batchnorm_forward(self, out, mean, var, inp, gamma, beta, r, c, eps)
    }

    fn batchnorm_inference(
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
        Gpu::batchnorm_inference(
            self,
            out,
            inp,
            gamma,
            beta,
            moving_mean,
            moving_var,
            r,
            c,
            eps,
        )
    }

    fn batchnorm_backward(
        &self,
        dinp: Option<&mut Buf>,
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
        match dinp {
            Some(dinp) => Gpu::batchnorm_backward(
                self, dinp, dgamma, dbeta, dout, inp, mean, var, gamma, r, c, eps,
            ),
            None => self
                .batchnorm_param_grads(dgamma, dbeta, dout, inp, mean, var, r, c, eps)
                .map(drop),
        }
    }

    fn batchnorm_update_moving(
        &self,
        moving_mean: &mut Buf,
        moving_var: &mut Buf,
        mean: &Buf,
        var: &Buf,
        c: usize,
        momentum: f64,
    ) -> Result<()> {
        Gpu::batchnorm_update_moving(self, moving_mean, moving_var, mean, var, c, momentum)
    }

    fn recurrent_cache_len(kind: Recurrent, b: usize, s: usize, h: usize) -> usize {
        match kind {
            Recurrent::Lstm => lstm::lstm_cache_len(b, s, h),
            Recurrent::Gru => gru::gru_cache_len(b, s, h),
        }
    }

    fn recurrent_forward(
        &self,
        kind: Recurrent,
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
        match kind {
            Recurrent::Lstm => self.lstm_forward(h_out, cache, x, w_ih, w_hh, bias, b, s, i, h),
            Recurrent::Gru => self.gru_forward(h_out, cache, x, w_ih, w_hh, bias, b, s, i, h),
        }
    }

    fn recurrent_backward(
        &self,
        kind: Recurrent,
        dx: Option<&mut Buf>,
        [dw_ih, dw_hh, dbias]: [&mut Buf; 3],
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
        match kind {
            Recurrent::Lstm => self.lstm_backward(
                dx, dw_ih, dw_hh, dbias, dh_out, cache, x, w_ih, w_hh, b, s, i, h,
            ),
            Recurrent::Gru => self.gru_backward(
                dx, dw_ih, dw_hh, dbias, dh_out, cache, x, w_ih, w_hh, b, s, i, h,
            ),
        }
    }

    /// As on the CPU: the layer's backward on x̂ with no input gradient, then the fold
    /// (`bn_recurrent_fold`); the `[B·S, G] × [G, I]` product `dZ·W_ihᵀ` is never formed.
    fn bn_recurrent_backward(
        &self,
        kind: Recurrent,
        [dgamma, dbeta, dwi, dwh, db]: [&mut Buf; 5],
        dh_out: &Buf,
        cache: &Buf,
        bn_inp: &Buf,
        _bn_out: &Buf,
        mean: &Buf,
        var: &Buf,
        eps: f64,
        [gamma, beta, wi, wh]: [&Buf; 4],
        b: usize,
        s: usize,
        i: usize,
        h: usize,
    ) -> Result<()> {
        let (rows, g) = (b * s, kind.gates() * h);
        let mut xhat = self.scratch(rows * i)?;
        self.with_unit_affine(i, |ones, zeros| {
            self.batchnorm_inference(&mut xhat, bn_inp, ones, zeros, mean, var, rows, i, eps)
        })?;
        let (mut nmat, mut db_local) = (Gpu::zeros(self, i * g)?, Gpu::zeros(self, db.len())?);
        Device::recurrent_backward(
            self,
            kind,
            None,
            [&mut nmat, dwh, &mut db_local],
            dh_out,
            cache,
            &xhat,
            wi,
            wh,
            b,
            s,
            i,
            h,
        )?;
        self.bn_recurrent_fold(
            dgamma, dbeta, dwi, db, &nmat, &db_local, gamma, beta, wi, i, g,
        )
    }

    fn dense_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        w: &Buf,
        bias: &Buf,
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()> {
        Gpu::dense_forward(self, out, inp, w, bias, b, i, o)
    }

    fn dense_backward(
        &self,
        dinp: Option<&mut Buf>,
        dw: &mut Buf,
        dbias: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        w: &Buf,
        b: usize,
        i: usize,
        o: usize,
    ) -> Result<()> {
        // An input gradient the model does not need: a zeroed buffer (the wrapper always writes
        // one, accumulating into it).
        let mut tmp = None;
        let dinp = match dinp {
            Some(d) => d,
            None => tmp.insert(self.zeros(b * i)?),
        };
        Gpu::dense_backward(self, dinp, dw, dbias, dout, inp, w, b, i, o)
    }

    fn activation_forward(
        &self,
        act: Activation,
        out: &mut Buf,
        inp: &Buf,
        n: usize,
    ) -> Result<()> {
        Gpu::activation_forward(self, act, out, inp, n)
    }

    fn activation_backward(
        &self,
        act: Activation,
        dinp: &mut Buf,
        dout: &Buf,
        inp: &Buf,
        out: &Buf,
        n: usize,
    ) -> Result<()> {
        Gpu::activation_backward(self, act, dinp, dout, inp, out, n)
    }

    fn dropout_forward(
        &self,
        out: &mut Buf,
        mask: &mut Buf,
        inp: &Buf,
        n: usize,
        p: f64,
        seed: u64,
    ) -> Result<()> {
        Gpu::dropout_forward(self, out, mask, inp, n, p, seed)
    }

    fn dropout_backward(&self, dinp: &mut Buf, dout: &Buf, mask: &Buf, n: usize) -> Result<()> {
        Gpu::dropout_backward(self, dinp, dout, mask, n)
    }

    fn concat_forward(
        &self,
        out: &mut Buf,
        inp: &Buf,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        Gpu::concat_forward(self, out, inp, rows, width, total, col)
    }

    fn concat_backward(
        &self,
        dinp: &mut Buf,
        dout: &Buf,
        rows: usize,
        width: usize,
        total: usize,
        col: usize,
    ) -> Result<()> {
        Gpu::concat_backward(self, dinp, dout, rows, width, total, col)
    }

    fn loss(
        &self,
        dpred: &mut Buf,
        pred: &Buf,
        batch: &DeviceBatch<Self>,
        loss: &LossConfig,
    ) -> Result<Pending> {
        let n = batch.n;
        let w = loss.long_weight.map(|_| &*batch.w);
        if !loss.neutralize {
            return Ok(Pending::Mse(
                self.mse_loss_partials(dpred, pred, &batch.y, w, n)?,
                n,
            ));
        }
        let groups = batch.groups.0.as_ref().ok_or_else(|| {
            Error::Config(
                "the neutralized loss needs style exposures, but the batch has none (K = 0)".into(),
            )
        })?;
        Ok(Pending::Neutralized(
            self.neutralized_mse_loss_partials(
                dpred,
                pred,
                &batch.y,
                w,
                &batch.styles,
                groups,
                n,
                batch.k,
            )?,
            n,
        ))
    }

    fn read(&self, p: Pending) -> Result<(f64, usize)> {
        p.value(self)
    }
}
