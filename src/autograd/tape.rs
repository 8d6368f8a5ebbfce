//! A tape of recorded ops, replayed in reverse for the backward pass (micrograd-sized).
//!
//! Values live in the tape as flat `Vec<T>` with a shape; parameters live in the [`ParamStore`]
//! and are referenced by [`ParamId`]. `backward` walks the nodes last to first and calls each
//! op's CPU backward, which accumulates (`+=`) into the gradients of its inputs and parameters.

use super::params::{ParamId, ParamStore};
use crate::float::Float;
use crate::ops::ts_features::FeatureSpec;
use crate::ops::{batchnorm, dense, elementwise, gru, lstm, pooling, ts_features};

/// A value recorded on the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var(pub usize);

/// Moving statistics of one BatchNorm layer (state, not trained by Adam).
#[derive(Debug, Clone)]
pub struct BnState<T> {
    pub moving_mean: Vec<T>,
    pub moving_var: Vec<T>,
    pub eps: f64,
    pub momentum: f64,
}

impl<T: Float> BnState<T> {
    /// Keras initial state: mean 0, variance 1.
    pub fn new(channels: usize, eps: f64, momentum: f64) -> Self {
        BnState {
            moving_mean: vec![T::zero(); channels],
            moving_var: vec![T::one(); channels],
            eps,
            momentum,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Recurrent {
    Lstm,
    Gru,
}

enum Node<T> {
    Features {
        x: Var,
        y: Var,
        spec: FeatureSpec,
    },
    Pool {
        x: Var,
        y: Var,
        steps: usize,
        window: usize,
        stride: usize,
    },
    BatchNorm {
        x: Var,
        y: Var,
        gamma: ParamId,
        beta: ParamId,
        mean: Vec<T>,
        var: Vec<T>,
        eps: f64,
    },
    Recurrent {
        kind: Recurrent,
        x: Var,
        y: Var,
        w: [ParamId; 3],
        cache: Vec<T>,
    },
    Dense {
        x: Var,
        y: Var,
        w: ParamId,
        b: ParamId,
    },
    Relu {
        x: Var,
        y: Var,
    },
    Dropout {
        x: Var,
        y: Var,
        mask: Vec<T>,
    },
    /// Row-wise concatenation of the flattened inputs.
    Concat {
        xs: Vec<Var>,
        y: Var,
    },
}

pub struct Tape<T> {
    /// Training mode: batch statistics in BN (and moving-stat updates), dropout active.
    pub training: bool,
    values: Vec<Vec<T>>,
    shapes: Vec<Vec<usize>>,
    grads: Vec<Vec<T>>,
    nodes: Vec<Node<T>>,
}

impl<T: Float> Tape<T> {
    pub fn new(training: bool) -> Self {
        Tape {
            training,
            values: vec![],
            shapes: vec![],
            grads: vec![],
            nodes: vec![],
        }
    }

    fn push(&mut self, data: Vec<T>, shape: Vec<usize>) -> Var {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        self.values.push(data);
        self.shapes.push(shape);
        Var(self.values.len() - 1)
    }

    /// Only a training tape keeps nodes: an inference pass never runs backward.
    fn record(&mut self, node: Node<T>) {
        if self.training {
            self.nodes.push(node);
        }
    }

    /// A leaf (the batch of pictures).
    pub fn input(&mut self, data: Vec<T>, shape: &[usize]) -> Var {
        self.push(data, shape.to_vec())
    }

    pub fn value(&self, v: Var) -> &[T] {
        &self.values[v.0]
    }

    pub fn shape(&self, v: Var) -> &[usize] {
        &self.shapes[v.0]
    }

    /// Gradient of a value after [`Tape::backward`] (zeros if nothing flowed into it).
    pub fn grad(&self, v: Var) -> &[T] {
        &self.grads[v.0]
    }

    /// `[B, F, D]` pictures → `[B, S, C]` feature channels.
    pub fn features(&mut self, x: Var, spec: &FeatureSpec) -> Var {
        let b = self.shapes[x.0][0];
        let (s, c) = (spec.steps(), spec.channels());
        let mut out = vec![T::zero(); b * s * c];
        ts_features::ts_features_forward(&mut out, &self.values[x.0], b, spec);
        let y = self.push(out, vec![b, s, c]);
        self.record(Node::Features {
            x,
            y,
            spec: spec.clone(),
        });
        y
    }

    /// `[B, S, C]` → `[B, S', 3C]` (mean, max, min over windows of the steps).
    pub fn pool(&mut self, x: Var, window: usize, stride: usize) -> Var {
        let (b, steps, c) = dims3(&self.shapes[x.0]);
        let s2 = (steps - window) / stride + 1;
        let mut out = vec![T::zero(); b * s2 * 3 * c];
        pooling::pool_forward(&mut out, &self.values[x.0], b, steps, c, window, stride);
        let y = self.push(out, vec![b, s2, 3 * c]);
        self.record(Node::Pool {
            x,
            y,
            steps,
            window,
            stride,
        });
        y
    }

    /// BatchNorm over the last axis (statistics over all leading axes). In training mode it
    /// normalizes with batch statistics and updates `state`'s moving averages.
    pub fn batchnorm(
        &mut self,
        x: Var,
        store: &ParamStore<T>,
        gamma: ParamId,
        beta: ParamId,
        state: &mut BnState<T>,
    ) -> Var {
        let shape = self.shapes[x.0].clone();
        let c = *shape.last().expect("batchnorm of a scalar");
        let r = self.values[x.0].len() / c;
        let mut out = vec![T::zero(); r * c];
        let (g, bt) = (store.get(gamma), store.get(beta));
        if !self.training {
            batchnorm::batchnorm_inference(
                &mut out,
                &self.values[x.0],
                g,
                bt,
                &state.moving_mean,
                &state.moving_var,
                r,
                c,
                state.eps,
            );
            return self.push(out, shape);
        }
        let (mut mean, mut var) = (vec![T::zero(); c], vec![T::zero(); c]);
        batchnorm::batchnorm_forward(
            &mut out,
            &mut mean,
            &mut var,
            &self.values[x.0],
            g,
            bt,
            r,
            c,
            state.eps,
        );
        batchnorm::batchnorm_update_moving(
            &mut state.moving_mean,
            &mut state.moving_var,
            &mean,
            &var,
            c,
            state.momentum,
        );
        let y = self.push(out, shape);
        self.record(Node::BatchNorm {
            x,
            y,
            gamma,
            beta,
            mean,
            var,
            eps: state.eps,
        });
        y
    }

    /// LSTM or GRU over the steps of `[B, S, I]`; returns the last hidden state `[B, H]`.
    /// `w` = [input kernel, recurrent kernel, bias].
    pub fn recurrent(
        &mut self,
        kind: Recurrent,
        x: Var,
        store: &ParamStore<T>,
        w: [ParamId; 3],
    ) -> Var {
        let (b, s, i) = dims3(&self.shapes[x.0]);
        let h = store.entry(w[1]).shape[0];
        let (wi, wh, bias) = (store.get(w[0]), store.get(w[1]), store.get(w[2]));
        let mut out = vec![T::zero(); b * h];
        let xv = &self.values[x.0];
        let cache = match kind {
            Recurrent::Lstm => {
                let mut cache = vec![T::zero(); lstm::lstm_cache_len(b, s, h)];
                lstm::lstm_forward(&mut out, &mut cache, xv, wi, wh, bias, b, s, i, h);
                cache
            }
            Recurrent::Gru => {
                let mut cache = vec![T::zero(); gru::gru_cache_len(b, s, h)];
                gru::gru_forward(&mut out, &mut cache, xv, wi, wh, bias, b, s, i, h);
                cache
            }
        };
        let y = self.push(out, vec![b, h]);
        self.record(Node::Recurrent {
            kind,
            x,
            y,
            w,
            cache,
        });
        y
    }

    /// `[B, I]` (or any `[B, …]`, flattened) → `[B, O]`.
    pub fn dense(&mut self, x: Var, store: &ParamStore<T>, w: ParamId, b: ParamId) -> Var {
        let rows = self.shapes[x.0][0];
        let wshape = &store.entry(w).shape;
        let (i, o) = (wshape[0], wshape[1]);
        let mut out = vec![T::zero(); rows * o];
        dense::dense_forward(
            &mut out,
            &self.values[x.0],
            store.get(w),
            store.get(b),
            rows,
            i,
            o,
        );
        let y = self.push(out, vec![rows, o]);
        self.record(Node::Dense { x, y, w, b });
        y
    }

    pub fn relu(&mut self, x: Var) -> Var {
        let n = self.values[x.0].len();
        let mut out = vec![T::zero(); n];
        elementwise::relu_forward(&mut out, &self.values[x.0], n);
        let y = self.push(out, self.shapes[x.0].clone());
        self.record(Node::Relu { x, y });
        y
    }

    /// Inverted dropout with rate `p` in training mode; the identity otherwise.
    pub fn dropout(&mut self, x: Var, p: f64, seed: u64) -> Var {
        if !self.training || p == 0.0 {
            return x;
        }
        let n = self.values[x.0].len();
        let (mut out, mut mask) = (vec![T::zero(); n], vec![T::zero(); n]);
        elementwise::dropout_forward(&mut out, &mut mask, &self.values[x.0], n, p, seed);
        let y = self.push(out, self.shapes[x.0].clone());
        self.record(Node::Dropout { x, y, mask });
        y
    }

    /// Flattens each input to `[B, ·]` and concatenates them along the second axis.
    pub fn concat(&mut self, xs: &[Var]) -> Var {
        let rows = self.shapes[xs[0].0][0];
        let widths: Vec<usize> = xs.iter().map(|v| self.values[v.0].len() / rows).collect();
        let total: usize = widths.iter().sum();
        let mut out = Vec::with_capacity(rows * total);
        for r in 0..rows {
            for (v, &wd) in xs.iter().zip(&widths) {
                out.extend_from_slice(&self.values[v.0][r * wd..(r + 1) * wd]);
            }
        }
        let y = self.push(out, vec![rows, total]);
        self.record(Node::Concat { xs: xs.to_vec(), y });
        y
    }

    /// Seeds `∂L/∂root = droot` and replays the tape backward, accumulating parameter
    /// gradients into `store.grad`.
    pub fn backward(&mut self, root: Var, droot: &[T], store: &mut ParamStore<T>) {
        self.grads = self
            .values
            .iter()
            .map(|v| vec![T::zero(); v.len()])
            .collect();
        self.grads[root.0].copy_from_slice(droot);
        let nodes = std::mem::take(&mut self.nodes);
        for node in nodes.iter().rev() {
            self.backward_node(node, store);
        }
        self.nodes = nodes;
    }

    /// Moves the gradient of an op's output out of the tape (each value has one producer).
    fn take_dy(&mut self, y: Var) -> Vec<T> {
        std::mem::take(&mut self.grads[y.0])
    }

    fn backward_node(&mut self, node: &Node<T>, store: &mut ParamStore<T>) {
        match node {
            Node::Features { x, y, spec } => {
                let dy = self.take_dy(*y);
                let b = self.shapes[x.0][0];
                ts_features::ts_features_backward(
                    &mut self.grads[x.0],
                    &dy,
                    &self.values[x.0],
                    b,
                    spec,
                );
            }
            Node::Pool {
                x,
                y,
                steps,
                window,
                stride,
            } => {
                let dy = self.take_dy(*y);
                let (b, _, c) = dims3(&self.shapes[x.0]);
                pooling::pool_backward(
                    &mut self.grads[x.0],
                    &dy,
                    &self.values[x.0],
                    b,
                    *steps,
                    c,
                    *window,
                    *stride,
                );
            }
            Node::BatchNorm {
                x,
                y,
                gamma,
                beta,
                mean,
                var,
                eps,
            } => {
                let dy = self.take_dy(*y);
                let c = mean.len();
                let r = dy.len() / c;
                let g = store.get(*gamma).to_vec();
                let (mut dg, mut db) = (vec![T::zero(); c], vec![T::zero(); c]);
                batchnorm::batchnorm_backward(
                    &mut self.grads[x.0],
                    &mut dg,
                    &mut db,
                    &dy,
                    &self.values[x.0],
                    mean,
                    var,
                    &g,
                    r,
                    c,
                    *eps,
                );
                add_into(store.grad_mut(*gamma), &dg);
                add_into(store.grad_mut(*beta), &db);
            }
            Node::Recurrent {
                kind,
                x,
                y,
                w,
                cache,
            } => {
                let dy = self.take_dy(*y);
                let (b, s, i) = dims3(&self.shapes[x.0]);
                let h = store.entry(w[1]).shape[0];
                let (wi, wh) = (store.get(w[0]).to_vec(), store.get(w[1]).to_vec());
                let mut dwi = vec![T::zero(); wi.len()];
                let mut dwh = vec![T::zero(); wh.len()];
                let mut db = vec![T::zero(); store.get(w[2]).len()];
                let xv = &self.values[x.0];
                let dx = &mut self.grads[x.0];
                match kind {
                    Recurrent::Lstm => lstm::lstm_backward(
                        dx, &mut dwi, &mut dwh, &mut db, &dy, cache, xv, &wi, &wh, b, s, i, h,
                    ),
                    Recurrent::Gru => gru::gru_backward(
                        dx, &mut dwi, &mut dwh, &mut db, &dy, cache, xv, &wi, &wh, b, s, i, h,
                    ),
                }
                add_into(store.grad_mut(w[0]), &dwi);
                add_into(store.grad_mut(w[1]), &dwh);
                add_into(store.grad_mut(w[2]), &db);
            }
            Node::Dense { x, y, w, b } => {
                let dy = self.take_dy(*y);
                let rows = self.shapes[x.0][0];
                let wshape = &store.entry(*w).shape;
                let (i, o) = (wshape[0], wshape[1]);
                let wv = store.get(*w).to_vec();
                let (mut dw, mut db) = (vec![T::zero(); i * o], vec![T::zero(); o]);
                dense::dense_backward(
                    &mut self.grads[x.0],
                    &mut dw,
                    &mut db,
                    &dy,
                    &self.values[x.0],
                    &wv,
                    rows,
                    i,
                    o,
                );
                add_into(store.grad_mut(*w), &dw);
                add_into(store.grad_mut(*b), &db);
            }
            Node::Relu { x, y } => {
                let dy = self.take_dy(*y);
                let n = dy.len();
                elementwise::relu_backward(&mut self.grads[x.0], &dy, &self.values[x.0], n);
            }
            Node::Dropout { x, y, mask } => {
                let dy = self.take_dy(*y);
                let n = dy.len();
                elementwise::dropout_backward(&mut self.grads[x.0], &dy, mask, n);
            }
            Node::Concat { xs, y } => {
                let dy = self.take_dy(*y);
                let rows = self.shapes[y.0][0];
                let total = dy.len() / rows;
                let mut col = 0;
                for v in xs {
                    let wd = self.values[v.0].len() / rows;
                    let g = &mut self.grads[v.0];
                    for r in 0..rows {
                        for j in 0..wd {
                            g[r * wd + j] += dy[r * total + col + j];
                        }
                    }
                    col += wd;
                }
            }
        }
    }
}

fn dims3(shape: &[usize]) -> (usize, usize, usize) {
    assert_eq!(
        shape.len(),
        3,
        "expected a [B, S, C] value, got shape {shape:?}"
    );
    (shape[0], shape[1], shape[2])
}

fn add_into<T: Float>(acc: &mut [T], g: &[T]) {
    acc.iter_mut().zip(g).for_each(|(a, &b)| *a += b);
}
