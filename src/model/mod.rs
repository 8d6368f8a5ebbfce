//! AlphaNet models v1, v2, v3 on the tape, with Keras initialisation.

pub mod checks;
pub mod config;
pub mod coverage;
pub mod init;

use crate::autograd::params::{ParamId, ParamStore};
use crate::autograd::tape::{BnState, Tape, Var};
use crate::device::{Cpu, Device, Params};
use crate::ops::pooling::pooled_steps;
use crate::ops::recurrent::Recurrent;
use crate::ops::ts_features::{all_pairs, pairs_among, FeatureSpec};
use crate::util::float::Float;
use crate::util::rng::{stream, Rng};
use crate::Result;
pub use config::{apply_variant, variant_configs, Arch, InputNorm, LossConfig, ModelConfig};
use rand::Rng as _;
use std::borrow::Borrow;

/// v2.1's feature draw: `n` of `n_features` without replacement (partial Fisher–Yates on the
/// model's own stream), returned sorted. Stored in the checkpoint and reused at prediction.
pub fn draw_features(n_features: usize, n: usize, seed: u64) -> Vec<u16> {
    let mut rng = stream(seed, "pair-sample");
    let mut all: Vec<u16> = (0..n_features as u16).collect();
    for i in 0..n {
        let j = rng.gen_range(i..n_features);
        all.swap(i, j);
    }
    let mut drawn = all[..n].to_vec();
    drawn.sort_unstable();
    drawn
}

/// An upper estimate, in bytes, of the memory training `cfg` at `batch` samples per step takes:
/// its parameters six times (weights, gradients, Adam's two moments, the best epoch's copy and
/// the duplicate made to keep it) plus, per sample, the picture, the feature channels and the
/// recurrent gates of every step, four times (values, gradients and the caches of both). From
/// the configuration alone, so that a model too large to train is refused before anything is
/// allocated.
pub fn training_memory_estimate(cfg: &ModelConfig, batch: usize) -> f64 {
    let pairs = match cfg.pair_sample {
        Some(n) => pairs_among(&(0..n.min(cfg.n_features) as u16).collect::<Vec<_>>()),
        None => all_pairs(cfg.n_features),
    };
    let spec = FeatureSpec {
        n_features: cfg.n_features,
        days: cfg.days,
        window: cfg.window,
        stride: cfg.stride,
        ops: cfg.ops,
        pairs,
    };
    let (c, s, h) = (
        spec.channels() as f64,
        spec.steps() as f64,
        cfg.hidden as f64,
    );
    let (params, per_sample) = match cfg.arch {
        Arch::V1 => {
            let width = s * c * 4.0;
            (
                width * cfg.dense_hidden as f64,
                width + cfg.dense_hidden as f64,
            )
        }
        Arch::V2 => (4.0 * h * (c + h + 2.0), s * (c + 4.0 * h)),
        Arch::V3 => (2.0 * 3.0 * h * (c + h + 2.0), 2.0 * 2.0 * s * (c + 3.0 * h)),
    };
    let picture = (cfg.n_features * cfg.days) as f64;
    4.0 * (6.0 * params + batch as f64 * (picture + 4.0 * per_sample))
}

/// gamma, beta and moving statistics of one BatchNorm layer.
#[derive(Debug, Clone, Copy)]
struct Bn {
    gamma: ParamId,
    beta: ParamId,
    state: usize,
}

#[derive(Debug, Clone)]
enum Layers {
    V1 {
        bn_feat: Bn,
        bn_pool: Bn,
        hidden: [ParamId; 2],
        out: [ParamId; 2],
    },
    V2 {
        bn_feat: Bn,
        rnn: [ParamId; 3],
        bn_rnn: Bn,
        out: [ParamId; 2],
    },
    V3 {
        branches: [(Bn, [ParamId; 3], Bn); 2],
        out: [ParamId; 2],
    },
}

/// A model on device `D`: its configuration, parameters (with gradients and Adam's moments), BN
/// moving statistics and feature specs, all in the device's buffers. The layers are described
/// once ([`Net::forward`]) for every device.
pub struct Net<D: Device> {
    pub cfg: ModelConfig,
    pub store: D::Params,
    pub bn: Vec<BnState<D::Buf>>,
    /// v2.1's drawn features (None: pairs over all features).
    pub drawn: Option<Vec<u16>>,
    pub specs: Vec<D::Spec>,
    layers: Layers,
}

/// A model on the host, in `T`: what checkpoints hold, gradient checks run, and the CPU trains.
pub type Model<T> = Net<Cpu<T>>;

impl<T: Float> Clone for Model<T> {
    fn clone(&self) -> Self {
        Net {
            cfg: self.cfg.clone(),
            store: self.store.clone(),
            bn: self.bn.clone(),
            drawn: self.drawn.clone(),
            specs: self.specs.clone(),
            layers: self.layers.clone(),
        }
    }
}

impl<T: Float> std::fmt::Debug for Model<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("cfg", &self.cfg)
            .field("params", &self.store.len())
            .finish()
    }
}

struct Builder<'a, T> {
    store: ParamStore<T>,
    bn: Vec<BnState<Vec<T>>>,
    rng: Rng,
    cfg: &'a ModelConfig,
}

impl<T: Float> Builder<'_, T> {
    fn bn(&mut self, name: &str, c: usize) -> Bn {
        let gamma = self
            .store
            .add(&format!("{name}.gamma"), &[c], vec![T::one(); c], 0.0);
        let beta = self
            .store
            .add(&format!("{name}.beta"), &[c], vec![T::zero(); c], 0.0);
        self.bn
            .push(BnState::new(c, self.cfg.bn_eps, self.cfg.bn_momentum));
        Bn {
            gamma,
            beta,
            state: self.bn.len() - 1,
        }
    }

    fn dense(&mut self, name: &str, i: usize, o: usize, l2: f64) -> [ParamId; 2] {
        let w = init::glorot_uniform(&mut self.rng, i, o);
        [
            self.store.add(&format!("{name}.kernel"), &[i, o], w, l2),
            self.store
                .add(&format!("{name}.bias"), &[o], vec![T::zero(); o], 0.0),
        ]
    }

    /// Keras LSTM (gates i,f,c,o; forget bias 1) or GRU (gates z,r,h; bias `[2, 3H]`).
    fn recurrent(&mut self, name: &str, kind: Recurrent, i: usize, h: usize) -> [ParamId; 3] {
        let gates = kind.gates();
        let wi = init::glorot_uniform(&mut self.rng, i, gates * h);
        let wh = init::orthogonal(&mut self.rng, h, gates * h);
        let (bias, bshape) = match kind {
            Recurrent::Lstm => {
                let mut b = vec![T::zero(); 4 * h];
                b[h..2 * h].iter_mut().for_each(|v| *v = T::one());
                (b, vec![4 * h])
            }
            Recurrent::Gru => (vec![T::zero(); 6 * h], vec![2, 3 * h]),
        };
        [
            self.store
                .add(&format!("{name}.kernel"), &[i, gates * h], wi, 0.0),
            self.store.add(
                &format!("{name}.recurrent_kernel"),
                &[h, gates * h],
                wh,
                0.0,
            ),
            self.store.add(&format!("{name}.bias"), &bshape, bias, 0.0),
        ]
    }
}

impl<T: Float> Model<T> {
    pub fn new(cfg: &ModelConfig) -> Result<Self> {
        cfg.validate()?;
        let drawn = cfg
            .pair_sample
            .map(|n| draw_features(cfg.n_features, n, cfg.seed));
        let pairs = match &drawn {
            Some(d) => pairs_among(d),
            None => all_pairs(cfg.n_features),
        };
        let spec = |stride| FeatureSpec {
            n_features: cfg.n_features,
            days: cfg.days,
            window: cfg.window,
            stride,
            ops: cfg.ops,
            pairs: pairs.clone(),
        };
        let specs = match cfg.arch {
            Arch::V3 => vec![spec(cfg.stride), spec(cfg.stride2)],
            _ => vec![spec(cfg.stride)],
        };
        for s in &specs {
            s.validate()?;
        }
        let mut b = Builder {
            store: ParamStore::new(),
            bn: vec![],
            rng: stream(cfg.seed, "init"),
            cfg,
        };
        let (c, h) = (specs[0].channels(), cfg.hidden);
        let layers = match cfg.arch {
            Arch::V1 => {
                let steps = specs[0].steps();
                let pooled = pooled_steps(steps, steps.min(3), 3);
                let bn_feat = b.bn("bn_features", c);
                let bn_pool = b.bn("bn_pool", 3 * c);
                let width = steps * c + pooled * 3 * c;
                let hidden = b.dense("hidden", width, cfg.dense_hidden, 0.0);
                let out = b.dense("output", cfg.dense_hidden, 1, cfg.l2);
                Layers::V1 {
                    bn_feat,
                    bn_pool,
                    hidden,
                    out,
                }
            }
            Arch::V2 => {
                let bn_feat = b.bn("bn_features", c);
                let rnn = b.recurrent("lstm", Recurrent::Lstm, c, h);
                let bn_rnn = b.bn("bn_lstm", h);
                let out = b.dense("output", h, 1, cfg.l2);
                Layers::V2 {
                    bn_feat,
                    rnn,
                    bn_rnn,
                    out,
                }
            }
            Arch::V3 => {
                let mut branch = |k: usize| {
                    let bn_feat = b.bn(&format!("branch{k}.bn_features"), c);
                    let rnn = b.recurrent(&format!("branch{k}.gru"), Recurrent::Gru, c, h);
                    let bn_rnn = b.bn(&format!("branch{k}.bn_gru"), h);
                    (bn_feat, rnn, bn_rnn)
                };
                let branches = [branch(0), branch(1)];
                let out = b.dense("output", 2 * h, 1, cfg.l2);
                Layers::V3 { branches, out }
            }
        };
        Ok(Model {
            cfg: cfg.clone(),
            store: b.store,
            bn: b.bn,
            drawn,
            specs,
            layers,
        })
    }

    /// Predictions for a `[B, F, D]` batch in inference mode (moving BN statistics, no dropout).
    pub fn predict(&mut self, pictures: Vec<T>, b: usize) -> Vec<T> {
        let dev = Cpu::new();
        self.predict_on(&dev, &pictures, b)
            .expect("the CPU backend does not fail")
    }

    /// The model on `dev`: parameters, gradients, Adam's moments and step, BN moving statistics
    /// and feature specs copied there.
    pub fn to_device<D: Device<T = T>>(&self, dev: &D) -> Result<Net<D>> {
        let s = &self.store;
        let store = dev.params(&s.entries, [&s.data, &s.grad, &s.m, &s.v], s.step)?;
        let specs = self.specs.iter().map(|sp| dev.feature_spec(sp));
        self.rebuilt(store, |b| dev.upload(b), specs)
    }
}

impl<D: Device> Net<D> {
    /// The same model on the host ([`Model::to_device`]'s inverse).
    pub fn to_host(&self, dev: &D) -> Result<Model<D::T>> {
        let ([data, grad, m, v], step) = dev.params_to_host(&self.store)?;
        let entries = self.store.entries().to_vec();
        let store = ParamStore {
            data,
            grad,
            m,
            v,
            entries,
            step,
        };
        let specs = self.specs.iter().map(|s| Ok(D::spec_dims(s).clone()));
        self.rebuilt(store, |b| dev.download(b.borrow()), specs)
    }

    /// A copy on the same device (device to device): early stopping's best epoch.
    pub fn duplicate(&self, dev: &D) -> Result<Net<D>> {
        let specs = (self.specs.iter()).map(|s| dev.feature_spec(D::spec_dims(s)));
        self.rebuilt(
            dev.copy_params(&self.store)?,
            |b| dev.copy(b.borrow()),
            specs,
        )
    }

    /// This model with its state in another device's buffers: `store`, each BN statistic
    /// through `bn`, and `specs`.
    fn rebuilt<E: Device>(
        &self,
        store: E::Params,
        mut bn: impl FnMut(&D::Buf) -> Result<E::Buf>,
        specs: impl Iterator<Item = Result<E::Spec>>,
    ) -> Result<Net<E>> {
        Ok(Net {
            cfg: self.cfg.clone(),
            store,
            bn: (self.bn.iter())
                .map(|b| {
                    Ok(BnState {
                        moving_mean: bn(&b.moving_mean)?,
                        moving_var: bn(&b.moving_var)?,
                        eps: b.eps,
                        momentum: b.momentum,
                    })
                })
                .collect::<Result<_>>()?,
            drawn: self.drawn.clone(),
            specs: specs.collect::<Result<_>>()?,
            layers: self.layers.clone(),
        })
    }

    fn bn(&mut self, tape: &mut Tape<D>, x: Var, bn: Bn) -> Result<Var> {
        tape.batchnorm(x, &self.store, [bn.gamma, bn.beta], &mut self.bn[bn.state])
    }

    fn bn_recurrent(
        &mut self,
        tape: &mut Tape<D>,
        x: Var,
        bn: Bn,
        kind: Recurrent,
        w: [ParamId; 3],
    ) -> Result<Var> {
        let state = &mut self.bn[bn.state];
        tape.bn_recurrent(x, &self.store, [bn.gamma, bn.beta], state, kind, w)
    }

    /// Records the forward pass of a `[B, F, D]` batch on `tape`; returns the predictions `[B, 1]`.
    /// `dropout_seed` fixes the dropout masks of this step (ignored when not training).
    pub fn forward(&mut self, tape: &mut Tape<D>, x: Var, dropout_seed: u64) -> Result<Var> {
        let x = match self.cfg.input_norm {
            InputNorm::None => x,
            InputNorm::Picture => tape.normalize_pictures(x)?,
        };
        match self.layers.clone() {
            Layers::V1 {
                bn_feat,
                bn_pool,
                hidden,
                out,
            } => {
                let f = tape.features(x, &self.specs[0])?;
                let a = self.bn(tape, f, bn_feat)?;
                let steps = tape.shape(a)[1];
                let p = tape.pool(a, steps.min(3), 3)?;
                let pb = self.bn(tape, p, bn_pool)?;
                let cat = tape.concat(&[a, pb])?;
                let z = tape.dense(cat, &self.store, hidden)?;
                let z = tape.activation(self.cfg.activation, z)?;
                let z = tape.dropout(z, self.cfg.v1_dropout, dropout_seed)?;
                tape.dense(z, &self.store, out)
            }
            Layers::V2 {
                bn_feat,
                rnn,
                bn_rnn,
                out,
            } => {
                let f = tape.features(x, &self.specs[0])?;
                let hs = self.bn_recurrent(tape, f, bn_feat, Recurrent::Lstm, rnn)?;
                let hb = self.bn(tape, hs, bn_rnn)?;
                let d = tape.dropout(hb, self.cfg.dropout, dropout_seed)?;
                tape.dense(d, &self.store, out)
            }
            Layers::V3 { branches, out } => {
                let mut heads = Vec::with_capacity(2);
                for (k, (bn_feat, rnn, bn_rnn)) in branches.into_iter().enumerate() {
                    let f = tape.features(x, &self.specs[k])?;
                    let hs = self.bn_recurrent(tape, f, bn_feat, Recurrent::Gru, rnn)?;
                    heads.push(self.bn(tape, hs, bn_rnn)?);
                }
                let cat = tape.concat(&heads)?;
                let d = tape.dropout(cat, self.cfg.dropout, dropout_seed)?;
                tape.dense(d, &self.store, out)
            }
        }
    }

    /// Predictions for `b` pictures `[B, F, D]` already on the device, in inference mode.
    pub fn predict_on(&mut self, dev: &D, pictures: &D::Buf, b: usize) -> Result<Vec<D::T>> {
        let mut tape = Tape::new(dev, false);
        let x = tape.input(pictures, &[b, self.cfg.n_features, self.cfg.days]);
        let y = self.forward(&mut tape, x, 0)?;
        dev.download(tape.value(y))
    }
}
