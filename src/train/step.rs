//! One optimisation step on any device: forward on the tape, the configured loss, backward, L2,
//! Adam; and the host wrappers the CPU code and the gradient checks call.

use crate::autograd::adam::AdamConfig;
use crate::autograd::tape::Tape;
use crate::device::{Cpu, Device, DeviceBatch};
use crate::model::{LossConfig, Model, Net};
use crate::util::float::Float;
use crate::Result;
use std::borrow::BorrowMut;

pub use crate::device::Batch;

/// Zeroes the gradients, runs forward + the configured loss + backward + L2 on `dev`, leaving
/// `∂L/∂θ` in the model's gradients. Returns (data loss, L2 term), which the device may still be
/// computing ([`Device::read`]).
pub fn loss_and_grad_on<D: Device>(
    dev: &D,
    net: &mut Net<D>,
    batch: &DeviceBatch<D>,
    loss: &LossConfig,
    dropout_seed: u64,
) -> Result<(D::Pending, D::Pending)> {
    dev.zero_grad(&mut net.store)?;
    let mut tape = Tape::new(dev, true);
    let shape = [batch.n, net.cfg.n_features, net.cfg.days];
    let x = tape.input(&batch.x, &shape);
    let y = net.forward(&mut tape, x, dropout_seed)?;
    let mut dpred = dev.scratch(batch.n)?;
    let data = dev.loss(dpred.borrow_mut(), tape.value(y), batch, loss)?;
    tape.backward(y, dpred, &mut net.store)?;
    Ok((data, dev.l2_penalty(&mut net.store)?))
}

/// The scalars of a step queued on a device: its data loss and L2 term, which the device may
/// still be computing.
pub struct Queued<D: Device> {
    data: D::Pending,
    l2: D::Pending,
}

impl<D: Device> Queued<D> {
    /// (loss including the L2 term, date groups that fell back to plain MSE); waits for the step.
    pub fn read(self, dev: &D) -> Result<(f64, usize)> {
        let (l, fallback) = dev.read(self.data)?;
        Ok((l + dev.read(self.l2)?.0, fallback))
    }
}

/// Queues one Adam step on one batch on `dev` and returns without waiting for it, so that the
/// caller can prepare the next batch while a GPU computes this one.
pub fn queue_train_step<D: Device>(
    dev: &D,
    net: &mut Net<D>,
    batch: &DeviceBatch<D>,
    loss: &LossConfig,
    adam: &AdamConfig,
    dropout_seed: u64,
) -> Result<Queued<D>> {
    dev.scope(|| {
        let (data, l2) = loss_and_grad_on(dev, net, batch, loss, dropout_seed)?;
        dev.adam_step(&mut net.store, adam)?;
        Ok(Queued { data, l2 })
    })
}

/// One Adam step on one batch on `dev`; returns (loss including the L2 term, date groups that
/// fell back to plain MSE).
pub fn train_step_on<D: Device>(
    dev: &D,
    net: &mut Net<D>,
    batch: &DeviceBatch<D>,
    loss: &LossConfig,
    adam: &AdamConfig,
    dropout_seed: u64,
) -> Result<(f64, usize)> {
    queue_train_step(dev, net, batch, loss, adam, dropout_seed)?.read(dev)
}

/// The data loss of a batch in inference mode (moving BN statistics, no dropout), with the
/// predictions it was computed from. The L2 term is left out on purpose: early stopping should
/// compare fit, not the size of the weights.
pub fn eval_predict_on<D: Device>(
    dev: &D,
    net: &mut Net<D>,
    batch: &DeviceBatch<D>,
    loss: &LossConfig,
) -> Result<(f64, Vec<D::T>)> {
    let mut tape = Tape::new(dev, false);
    let shape = [batch.n, net.cfg.n_features, net.cfg.days];
    let x = tape.input(&batch.x, &shape);
    let y = net.forward(&mut tape, x, 0)?;
    let mut dpred = dev.scratch(batch.n)?;
    let pending = dev.loss(dpred.borrow_mut(), tape.value(y), batch, loss)?;
    let pred = dev.download(tape.value(y))?;
    Ok((dev.read(pending)?.0, pred))
}

/// [`loss_and_grad_on`] on the host: the loss including the L2 term, and the fallback groups.
pub fn loss_and_grad<T: Float>(
    model: &mut Model<T>,
    batch: &Batch<T>,
    loss: &LossConfig,
    dropout_seed: u64,
) -> (f64, usize) {
    let dev = Cpu::new();
    host(|| {
        let b = dev.batch(batch, batch.x.clone())?;
        let (data, l2) = loss_and_grad_on(&dev, model, &b, loss, dropout_seed)?;
        Ok((data.0 + l2.0, data.1))
    })
}

/// [`train_step_on`] on the host.
pub fn train_step<T: Float>(
    model: &mut Model<T>,
    batch: &Batch<T>,
    loss: &LossConfig,
    adam: &AdamConfig,
    dropout_seed: u64,
) -> (f64, usize) {
    let dev = Cpu::new();
    host(|| {
        let b = dev.batch(batch, batch.x.clone())?;
        train_step_on(&dev, model, &b, loss, adam, dropout_seed)
    })
}

/// [`eval_predict_on`] on the host.
pub fn eval_predict<T: Float>(
    model: &mut Model<T>,
    batch: &Batch<T>,
    loss: &LossConfig,
) -> (f64, Vec<T>) {
    let dev = Cpu::new();
    host(|| eval_predict_on(&dev, model, &dev.batch(batch, batch.x.clone())?, loss))
}

/// The data loss of a batch in inference mode, on the host ([`eval_predict_on`]).
pub fn eval_loss<T: Float>(model: &mut Model<T>, batch: &Batch<T>, loss: &LossConfig) -> f64 {
    eval_predict(model, batch, loss).0
}

/// Runs host-backend code, whose ops never fail (they assert their sizes instead).
fn host<R>(f: impl FnOnce() -> Result<R>) -> R {
    f().expect("the CPU backend does not fail")
}
