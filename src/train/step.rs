//! One optimisation step: forward on the tape, the configured loss, backward, L2, Adam.

use crate::autograd::adam::{adam_step, AdamConfig};
use crate::autograd::tape::Tape;
use crate::float::Float;
use crate::model::{LossConfig, Model};
use crate::ops::loss::{mse_loss, neutralized_mse_loss};

/// A batch of whole dates (or chunks of one date): pictures `[B, F, D]`, z-scored labels,
/// v2.3 weights, style exposures `[B, K]` and the row offsets of each date group.
#[derive(Debug, Clone, Default)]
pub struct Batch<T> {
    pub x: Vec<T>,
    pub y: Vec<T>,
    pub w: Vec<T>,
    pub styles: Vec<T>,
    pub k: usize,
    pub offsets: Vec<usize>,
}

impl<T: Float> Batch<T> {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// The value of the configured loss for predictions `pred` and its gradient written to `dpred`.
/// Returns (loss, number of date groups that fell back to plain MSE).
pub fn batch_loss<T: Float>(
    dpred: &mut [T],
    pred: &[T],
    batch: &Batch<T>,
    loss: &LossConfig,
) -> (T, usize) {
    let n = batch.len();
    let w = loss.long_weight.map(|_| &batch.w[..]);
    if loss.neutralize {
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
        (r.loss, r.fallback_groups)
    } else {
        (mse_loss(dpred, pred, &batch.y, w, n), 0)
    }
}

/// Zeroes the gradients, runs forward + loss + backward + L2, leaving `∂L/∂θ` in
/// `model.store.grad`. Returns (total loss including the L2 term, fallback groups).
pub fn loss_and_grad<T: Float>(
    model: &mut Model<T>,
    batch: &Batch<T>,
    loss: &LossConfig,
    dropout_seed: u64,
) -> (f64, usize) {
    model.store.zero_grad();
    let mut tape = Tape::new(true);
    let b = batch.len();
    let x = tape.input(batch.x.clone(), &[b, model.cfg.n_features, model.cfg.days]);
    let y = model.forward(&mut tape, x, dropout_seed);
    let mut dpred = vec![T::zero(); b];
    let (l, fallback) = batch_loss(&mut dpred, tape.value(y), batch, loss);
    tape.backward(y, &dpred, &mut model.store);
    (l.f64() + model.store.l2_penalty(true), fallback)
}

/// One Adam step on one batch; returns (loss, fallback groups).
pub fn train_step<T: Float>(
    model: &mut Model<T>,
    batch: &Batch<T>,
    loss: &LossConfig,
    adam: &AdamConfig,
    dropout_seed: u64,
) -> (f64, usize) {
    // The whole step runs on a worker of the pool, so each of its dozen parallel loops starts
    // and ends inside the pool instead of handing work from this thread to the pool and back
    // (two context switches per loop, costly on a busy machine).
    rayon::scope(|_| {
        let r = loss_and_grad(model, batch, loss, dropout_seed);
        adam_step(&mut model.store, adam);
        r
    })
}

/// The data loss of a batch in inference mode (moving BN statistics, no dropout). The L2 term is
/// left out on purpose: early stopping should compare fit, not the size of the weights.
pub fn eval_loss<T: Float>(model: &mut Model<T>, batch: &Batch<T>, loss: &LossConfig) -> f64 {
    eval_predict(model, batch, loss).0
}

/// [`eval_loss`] together with the predictions it was computed from.
pub fn eval_predict<T: Float>(
    model: &mut Model<T>,
    batch: &Batch<T>,
    loss: &LossConfig,
) -> (f64, Vec<T>) {
    let pred = model.predict(batch.x.clone(), batch.len());
    let mut dpred = vec![T::zero(); batch.len()];
    (batch_loss(&mut dpred, &pred, batch, loss).0.f64(), pred)
}

/// Keeps freed memory in the process (glibc only; elsewhere a no-op). Every step allocates and
/// frees the same few large buffers (pictures, features, caches: tens of MB); glibc's default
/// hands such memory back to the kernel on free, from the rayon workers' arenas in particular,
/// and the next step faults it in again, thousands of zeroed pages per step, which cost more
/// than the batch-norm and feature layers together. Called once at start-up by the CLI.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes allocator parameters; called before the buffers exist.
        unsafe {
            // Never trim the heaps; serve blocks below 32 MiB (glibc's maximum) from them
            // rather than from fresh mappings.
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
        }
    }
}
