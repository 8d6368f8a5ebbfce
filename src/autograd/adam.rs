//! Adam with Keras semantics over the whole flat store in one pass.
//!
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `α_t = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)`,
//! `θ ← θ − α_t·m/(√v + ε)` (ε on the un-corrected √v, as `tf.keras.optimizers.Adam`).

use super::params::ParamStore;
use crate::util::float::Float;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

impl AdamConfig {
    /// The step size of step `t` (from 1) with both bias corrections folded in.
    pub fn lr_t(&self, t: u64) -> f64 {
        let t = t as i32;
        self.lr * (1.0 - self.beta2.powi(t)).sqrt() / (1.0 - self.beta1.powi(t))
    }
}

/// One Adam step over `n` parameters: the CPU reference of the fused CUDA kernel (same arguments).
#[allow(clippy::too_many_arguments)]
pub fn adam_update<T: Float>(
    params: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grad: &[T],
    n: usize,
    lr_t: T,
    beta1: T,
    beta2: T,
    eps: T,
) {
    let one = T::one();
    for i in 0..n {
        let g = grad[i];
        m[i] = beta1 * m[i] + (one - beta1) * g;
        v[i] = beta2 * v[i] + (one - beta2) * g * g;
        params[i] -= lr_t * m[i] / (v[i].sqrt() + eps);
    }
}

/// Advances the store's step counter and applies [`adam_update`] to every parameter.
pub fn adam_step<T: Float>(store: &mut ParamStore<T>, cfg: &AdamConfig) {
    store.step += 1;
    let lr_t = cfg.lr_t(store.step);
    let n = store.data.len();
    let ParamStore {
        data, grad, m, v, ..
    } = store;
    adam_update(
        data,
        m,
        v,
        grad,
        n,
        T::c(lr_t),
        T::c(cfg.beta1),
        T::c(cfg.beta2),
        T::c(cfg.eps),
    );
}
