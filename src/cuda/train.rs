//! v2 training on the GPU: the CPU's `train_step` (src/train/step.rs) composed from the launch
//! wrappers, layer for layer as `Model::forward` records it on the tape: features → BN → LSTM →
//! BN → dropout → dense, the configured loss, the backward pass in reverse order, the L2 term and
//! Adam. v2.1–v2.3 change only the feature spec (the drawn pairs) and the loss, so they run as is.
//!
//! Parameters, gradients, Adam moments and BN moving statistics live on the device, one buffer
//! per named tensor of the model's `ParamStore`. A batch is a [`DeviceBatch`]: uploaded once and
//! reused by as many steps as the caller likes ([`GpuTrainer::upload`]), or uploaded by
//! [`GpuTrainer::train_step`] from a host batch. A step brings back two scalars: the data loss
//! (the loss kernels' partial sums) and the L2 term's Σθ² per regularised tensor.

use super::context::cuda_err;
use super::{CudaSlice, DeviceFeatureSpec, Gpu};
use crate::autograd::adam::AdamConfig;
use crate::autograd::params::{ParamEntry, ParamStore};
use crate::error::{Error, Result};
use crate::model::{Arch, LossConfig, Model, ModelConfig};
use crate::ops::lstm::lstm_cache_len;
use crate::train::step::Batch;

type Buf = CudaSlice<f32>;

/// The v2 tensors by their index in the store, looked up by the names `Model::new` gives them.
#[derive(Clone, Copy)]
struct V2Params {
    bn_features: [usize; 2],
    lstm: [usize; 3],
    bn_lstm: [usize; 2],
    output: [usize; 2],
}

/// A training batch on the device: pictures, labels, and what the configured loss reads.
pub struct DeviceBatch {
    n: usize,
    x: Buf,
    y: Buf,
    /// v2.3 sample weights, when the loss is weighted.
    w: Option<Buf>,
    /// v2.2: styles [N, K] and the date-group offsets, when the loss is neutralized.
    neutral: Option<(Buf, CudaSlice<i32>, usize)>,
}

/// A step's data loss, still on the device as the loss kernel's partial sums.
enum PendingLoss {
    Mse(Buf),
    Neutralized(Buf),
}

/// A step's L2 term, still on the device: Σθ² of each regularised tensor and its weight l2.
struct PendingL2 {
    sumsq: Buf,
    l2: Vec<f64>,
}

impl PendingL2 {
    /// Σ l2·Σθ², as `ParamStore::l2_penalty` returns it.
    fn value(self, gpu: &Gpu) -> Result<f64> {
        if self.l2.is_empty() {
            return Ok(0.0);
        }
        let sums = gpu.download(&self.sumsq)?;
        Ok(self.l2.iter().zip(sums).map(|(l2, s)| l2 * s as f64).sum())
    }
}

/// A v2 model on the GPU, trained with the same steps as the CPU's `train_step`.
pub struct GpuTrainer<'g> {
    gpu: &'g Gpu,
    entries: Vec<ParamEntry>,
    ids: V2Params,
    params: Vec<Buf>,
    grads: Vec<Buf>,
    m: Vec<Buf>,
    v: Vec<Buf>,
    /// Moving mean and variance of bn_features and bn_lstm.
    moving: [[Buf; 2]; 2],
    spec: DeviceFeatureSpec,
    hidden: usize,
    dropout: f64,
    bn_eps: f64,
    bn_momentum: f64,
    /// Adam's step counter, carried over from the model's store.
    step: u64,
}

/// What the backward pass reads from the forward pass. Batch statistics exist only when
/// training; the dropped activations and their mask only when training with dropout on.
struct Pass {
    feat: Buf,
    a: Buf,
    hs: Buf,
    cache: Buf,
    hb: Buf,
    stats: Option<[[Buf; 2]; 2]>,
    dropout: Option<[Buf; 2]>,
    pred: Buf,
}

/// Says whether a model of this configuration can train on the GPU: v2 and its variants can,
/// v1 and v3 cannot yet.
pub fn ensure_supported(cfg: &ModelConfig) -> Result<()> {
    match cfg.arch {
        Arch::V2 => Ok(()),
        arch => Err(Error::Cuda(format!(
            "{} training is not implemented on CUDA yet; use --device cpu",
            format!("{arch:?}").to_lowercase()
        ))),
    }
}

impl<'g> GpuTrainer<'g> {
    /// Copies the model's parameters, Adam moments, step counter and BN moving statistics to
    /// the device. Only v2 (and its variants) runs on the GPU so far.
    pub fn new(gpu: &'g Gpu, model: &Model<f32>) -> Result<Self> {
        ensure_supported(&model.cfg)?;
        let store = &model.store;
        let id = |name: &str| {
            store
                .find(name)
                .map(|p| p.0)
                .ok_or_else(|| Error::Cuda(format!("v2 model without the tensor {name}")))
        };
        let ids = V2Params {
            bn_features: [id("bn_features.gamma")?, id("bn_features.beta")?],
            lstm: [
                id("lstm.kernel")?,
                id("lstm.recurrent_kernel")?,
                id("lstm.bias")?,
            ],
            bn_lstm: [id("bn_lstm.gamma")?, id("bn_lstm.beta")?],
            output: [id("output.kernel")?, id("output.bias")?],
        };
        let per_tensor = |flat: &[f32]| -> Result<Vec<Buf>> {
            store
                .entries
                .iter()
                .map(|e| gpu.upload(&flat[e.range.clone()]))
                .collect()
        };
        let bn = |k: usize| -> Result<[Buf; 2]> {
            Ok([
                gpu.upload(&model.bn[k].moving_mean)?,
                gpu.upload(&model.bn[k].moving_var)?,
            ])
        };
        Ok(GpuTrainer {
            gpu,
            entries: store.entries.clone(),
            ids,
            params: per_tensor(&store.data)?,
            grads: per_tensor(&store.grad)?,
            m: per_tensor(&store.m)?,
            v: per_tensor(&store.v)?,
            moving: [bn(0)?, bn(1)?],
            spec: gpu.feature_spec(&model.specs[0])?,
            hidden: model.cfg.hidden,
            dropout: model.cfg.dropout,
            bn_eps: model.bn[0].eps,
            bn_momentum: model.bn[0].momentum,
            step: store.step,
        })
    }

    /// One Adam step on one batch, as the CPU's `train_step`; returns (loss including the L2
    /// term, date groups that fell back to plain MSE). Returns once the work is queued, except
    /// for the loss's own download: synchronize before reading a clock.
    pub fn train_step(
        &mut self,
        batch: &Batch<f32>,
        loss: &LossConfig,
        adam: &AdamConfig,
        dropout_seed: u64,
    ) -> Result<(f64, usize)> {
        let batch = self.upload(batch, loss)?;
        self.train_step_on(&batch, loss, adam, dropout_seed)
    }

    /// [`Self::train_step`] on a batch already on the device.
    pub fn train_step_on(
        &mut self,
        batch: &DeviceBatch,
        loss: &LossConfig,
        adam: &AdamConfig,
        dropout_seed: u64,
    ) -> Result<(f64, usize)> {
        let b = batch.n;
        let pass = self.forward(&batch.x, b, Some(dropout_seed))?;
        let mut dpred = self.gpu.scratch(b)?;
        let data_loss = self.batch_loss(&mut dpred, &pass.pred, batch, loss)?;
        self.backward(&pass, &dpred, b)?;
        let l2 = self.l2_penalty()?;
        self.adam_step(adam)?;
        // Read back only now, so the host queues the whole step without waiting for the GPU.
        let (data_loss, fallback) = match data_loss {
            PendingLoss::Mse(p) => (
                super::launch::mse_from_partials(&self.gpu.download(&p)?, b),
                0,
            ),
            PendingLoss::Neutralized(p) => {
                let r = super::launch::neutralized_from_partials(&self.gpu.download(&p)?, b);
                (r.loss, r.fallback_groups)
            }
        };
        Ok((data_loss as f64 + l2.value(self.gpu)?, fallback))
    }

    /// The batch on the device, with what `loss` needs of it (weights, styles and date groups).
    pub fn upload(&self, batch: &Batch<f32>, loss: &LossConfig) -> Result<DeviceBatch> {
        let g = self.gpu;
        let neutral = if loss.neutralize {
            if batch.k == 0 {
                return Err(Error::Config(
                    "the neutralized loss needs style exposures, but the batch has none (K = 0)"
                        .into(),
                ));
            }
            let offsets = batch
                .offsets
                .iter()
                .map(|&o| {
                    i32::try_from(o).map_err(|_| Error::Cuda(format!("offset {o} exceeds i32")))
                })
                .collect::<Result<Vec<i32>>>()?;
            Some((g.upload(&batch.styles)?, g.upload(&offsets)?, batch.k))
        } else {
            None
        };
        Ok(DeviceBatch {
            n: batch.len(),
            x: g.upload(&batch.x)?,
            y: g.upload(&batch.y)?,
            w: loss.long_weight.map(|_| g.upload(&batch.w)).transpose()?,
            neutral,
        })
    }

    /// Predictions for `b` pictures `[B, F, D]` in inference mode (moving BN statistics, no
    /// dropout), as `Model::predict`.
    pub fn predict(&mut self, pictures: &[f32], b: usize) -> Result<Vec<f32>> {
        let x = self.gpu.upload(pictures)?;
        let pass = self.forward(&x, b, None)?;
        self.gpu.download(&pass.pred)
    }

    /// Writes the device state back into `model` (the one it was built from, or one of the same
    /// configuration): parameters, the last step's gradients, Adam moments and step counter, BN
    /// moving statistics.
    pub fn download_into(&self, model: &mut Model<f32>) -> Result<()> {
        let ParamStore {
            data,
            grad,
            m,
            v,
            step,
            ..
        } = &mut model.store;
        for (dev, host) in [
            (&self.params, data),
            (&self.grads, grad),
            (&self.m, m),
            (&self.v, v),
        ] {
            for (buf, e) in dev.iter().zip(&self.entries) {
                // Synchronous: the copy into pageable host memory completes before it returns.
                self.gpu
                    .stream()
                    .memcpy_dtoh(buf, &mut host[e.range.clone()])
                    .map_err(cuda_err)?;
            }
        }
        *step = self.step;
        for (state, [mean, var]) in model.bn.iter_mut().zip(&self.moving) {
            state.moving_mean = self.gpu.download(mean)?;
            state.moving_var = self.gpu.download(var)?;
        }
        Ok(())
    }

    /// The forward pass over x `[B, F, D]`: training (batch statistics, moving-statistics update,
    /// dropout with this seed) when `dropout_seed` is given, inference otherwise.
    fn forward(&mut self, x: &Buf, b: usize, dropout_seed: Option<u64>) -> Result<Pass> {
        let g = self.gpu;
        let (s, c, h) = (
            self.spec.spec.steps(),
            self.spec.spec.channels(),
            self.hidden,
        );
        let training = dropout_seed.is_some();
        let mut feat = g.scratch(b * s * c)?;
        g.ts_features_forward(&mut feat, x, b, &self.spec)?;
        let (a, stats0) = self.batchnorm(0, &feat, b * s, c, training)?;
        let [wi, wh, bias] = self.ids.lstm.map(|k| &self.params[k]);
        let (mut hs, mut cache) = (g.scratch(b * h)?, g.scratch(lstm_cache_len(b, s, h))?);
        g.lstm_forward(&mut hs, &mut cache, &a, wi, wh, bias, b, s, c, h)?;
        let (hb, stats1) = self.batchnorm(1, &hs, b, h, training)?;
        // As the tape: no dropout layer at all when p = 0 or when not training.
        let dropout = match dropout_seed {
            Some(seed) if self.dropout > 0.0 => {
                let (mut out, mut mask) = (g.scratch(b * h)?, g.scratch(b * h)?);
                g.dropout_forward(&mut out, &mut mask, &hb, b * h, self.dropout, seed)?;
                Some([out, mask])
            }
            _ => None,
        };
        let [w, bias] = self.ids.output.map(|k| &self.params[k]);
        let mut pred = g.scratch(b)?;
        let dense_in = dropout.as_ref().map_or(&hb, |[out, _]| out);
        g.dense_forward(&mut pred, dense_in, w, bias, b, h, 1)?;
        Ok(Pass {
            feat,
            a,
            hs,
            cache,
            hb,
            stats: stats0.zip(stats1).map(|(s0, s1)| [s0, s1]),
            dropout,
            pred,
        })
    }

    /// BN layer `layer` over `rows × c`: when training, normalised with the batch statistics
    /// (returned) which then update the moving ones; otherwise with the moving statistics.
    fn batchnorm(
        &mut self,
        layer: usize,
        inp: &Buf,
        rows: usize,
        c: usize,
        training: bool,
    ) -> Result<(Buf, Option<[Buf; 2]>)> {
        let g = self.gpu;
        let ids = [self.ids.bn_features, self.ids.bn_lstm][layer];
        let [gamma, beta] = ids.map(|k| &self.params[k]);
        let [moving_mean, moving_var] = &mut self.moving[layer];
        let mut out = g.scratch(rows * c)?;
        if !training {
            g.batchnorm_inference(
                &mut out,
                inp,
                gamma,
                beta,
                moving_mean,
                moving_var,
                rows,
                c,
                self.bn_eps,
            )?;
            return Ok((out, None));
        }
        let (mut mean, mut var) = (g.scratch(c)?, g.scratch(c)?);
        g.batchnorm_forward(
            &mut out,
            &mut mean,
            &mut var,
            inp,
            gamma,
            beta,
            rows,
            c,
            self.bn_eps,
        )?;
        g.batchnorm_update_moving(moving_mean, moving_var, &mean, &var, c, self.bn_momentum)?;
        Ok((out, Some([mean, var])))
    }

    /// The configured loss (`batch_loss` on the CPU): dpred written, the loss left on the device.
    fn batch_loss(
        &self,
        dpred: &mut Buf,
        pred: &Buf,
        batch: &DeviceBatch,
        loss: &LossConfig,
    ) -> Result<PendingLoss> {
        let (g, n) = (self.gpu, batch.n);
        let w = if loss.long_weight.is_some() {
            Some(batch.w.as_ref().ok_or_else(|| {
                Error::Cuda("a weighted loss on a batch uploaded without weights".into())
            })?)
        } else {
            None
        };
        if !loss.neutralize {
            return Ok(PendingLoss::Mse(
                g.mse_loss_partials(dpred, pred, &batch.y, w, n)?,
            ));
        }
        let (styles, offsets, k) = batch.neutral.as_ref().ok_or_else(|| {
            Error::Cuda("a neutralized loss on a batch uploaded without styles".into())
        })?;
        Ok(PendingLoss::Neutralized(g.neutralized_mse_loss_partials(
            dpred, pred, &batch.y, w, styles, offsets, n, *k,
        )?))
    }

    /// The backward pass from ∂L/∂pred: overwrites every parameter's gradient. Buffers that a
    /// forward kernel overwrites in full are left uninitialised; those the backward ops add into
    /// (`+=`, as their CPU twins) start at zero.
    fn backward(&mut self, p: &Pass, dpred: &Buf, b: usize) -> Result<()> {
        let g = self.gpu;
        let (s, c, h, eps) = (
            self.spec.spec.steps(),
            self.spec.spec.channels(),
            self.hidden,
            self.bn_eps,
        );
        let [[mean0, var0], [mean1, var1]] = p.stats.as_ref().expect("a training pass");
        for grad in &mut self.grads {
            g.stream().memset_zeros(grad).map_err(cuda_err)?;
        }
        let (params, grads, ids) = (&self.params, &mut self.grads, self.ids);
        let disjoint = "distinct tensors";

        let mut hb_d = g.zeros(b * h)?;
        let w = &params[ids.output[0]];
        let [dw, dbias] = grads.get_disjoint_mut(ids.output).expect(disjoint);
        match &p.dropout {
            Some([out, mask]) => {
                let mut out_d = g.zeros(b * h)?;
                g.dense_backward(&mut out_d, dw, dbias, dpred, out, w, b, h, 1)?;
                g.dropout_backward(&mut hb_d, &out_d, mask, b * h)?;
            }
            None => g.dense_backward(&mut hb_d, dw, dbias, dpred, &p.hb, w, b, h, 1)?,
        }

        let mut hs_d = g.zeros(b * h)?;
        let gamma = &params[ids.bn_lstm[0]];
        let [dgamma, dbeta] = grads.get_disjoint_mut(ids.bn_lstm).expect(disjoint);
        g.batchnorm_backward(
            &mut hs_d, dgamma, dbeta, &hb_d, &p.hs, mean1, var1, gamma, b, h, eps,
        )?;

        let mut a_d = g.zeros(b * s * c)?;
        let [wi, wh, _] = ids.lstm.map(|k| &params[k]);
        let [dwi, dwh, dlb] = grads.get_disjoint_mut(ids.lstm).expect(disjoint);
        g.lstm_backward(
            &mut a_d, dwi, dwh, dlb, &hs_d, &p.cache, &p.a, wi, wh, b, s, c, h,
        )?;

        // The features take no gradient (the pictures are inputs): BN's parameters only, as the
        // tape does on the CPU.
        let [dgamma, dbeta] = grads.get_disjoint_mut(ids.bn_features).expect(disjoint);
        g.batchnorm_param_grads(dgamma, dbeta, &a_d, &p.feat, mean0, var0, b * s, c, eps)
            .map(drop)
    }

    /// `ParamStore::l2_penalty(true)` on the device: adds 2·l2·θ to the regularised tensors'
    /// gradients and leaves their Σθ² on the device.
    fn l2_penalty(&mut self) -> Result<PendingL2> {
        let g = self.gpu;
        let regularised: Vec<(usize, f64)> = (self.entries.iter().enumerate())
            .filter(|(_, e)| e.l2 != 0.0)
            .map(|(k, e)| (k, e.l2))
            .collect();
        let mut sumsq = g.scratch(regularised.len())?;
        for (slot, &(k, l2)) in regularised.iter().enumerate() {
            let n = self.params[k].len();
            g.l2_penalty(
                &mut self.grads[k],
                &mut sumsq.slice_mut(slot..slot + 1),
                &self.params[k],
                n,
                (2.0 * l2) as f32,
            )?;
        }
        Ok(PendingL2 {
            sumsq,
            l2: regularised.into_iter().map(|(_, l2)| l2).collect(),
        })
    }

    /// `adam_step`: one fused update per tensor.
    fn adam_step(&mut self, adam: &AdamConfig) -> Result<()> {
        self.step += 1;
        let lr_t = adam.lr_t(self.step) as f32;
        let (b1, b2, eps) = (adam.beta1 as f32, adam.beta2 as f32, adam.eps as f32);
        for k in 0..self.params.len() {
            let n = self.params[k].len();
            self.gpu.adam_update(
                &mut self.params[k],
                &mut self.m[k],
                &mut self.v[k],
                &self.grads[k],
                n,
                lr_t,
                b1,
                b2,
                eps,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v2_is_supported() {
        let cfg = |arch| ModelConfig {
            arch,
            ..ModelConfig::default()
        };
        assert!(ensure_supported(&cfg(Arch::V2)).is_ok());
        for (arch, name) in [(Arch::V1, "v1"), (Arch::V3, "v3")] {
            let e = ensure_supported(&cfg(arch)).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{name} training is not implemented on CUDA yet"))
                    && e.contains("use --device cpu"),
                "{e}"
            );
        }
    }
}
