//! A tape of recorded ops, replayed in reverse for the backward pass (micrograd-sized).
//!
//! Values live in the tape as flat `Vec<T>` with a shape; parameters live in the [`ParamStore`]
//! and are referenced by [`ParamId`]. `backward` walks the nodes last to first and calls each
//! op's CPU backward, which accumulates (`+=`) into the gradients of its inputs and parameters.
//!
//! Inputs are data: no gradient is computed for them, nor for anything derived from them by
//! parameter-free ops (the feature layer, whose backward is the costliest op of the model, is
//! never replayed), and a layer whose input needs no gradient computes only its parameters'.

use super::params::{ParamId, ParamStore};
use crate::float::Float;
use crate::ops::ts_features::FeatureSpec;
use crate::ops::{
    batchnorm, dense, elementwise, gru, lstm, pooling, ts_features, RecurrentBackward,
    RecurrentForward,
};

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

/// A recurrent layer's CPU ops: cache length `(b, s, h)`, forward, backward.
pub type RecurrentOps<T> = (
    fn(usize, usize, usize) -> usize,
    RecurrentForward<T>,
    RecurrentBackward<T>,
);

impl Recurrent {
    /// The layer's CPU ops; both kinds take the same arguments.
    pub fn ops<T: Float>(self) -> RecurrentOps<T> {
        match self {
            Recurrent::Lstm => (
                lstm::lstm_cache_len,
                lstm::lstm_forward,
                lstm::lstm_backward,
            ),
            Recurrent::Gru => (gru::gru_cache_len, gru::gru_forward, gru::gru_backward),
        }
    }
}

enum Node<T> {
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
    /// Whether a gradient flows into each value (it depends on a parameter).
    needs_grad: Vec<bool>,
    grads: Vec<Vec<T>>,
    nodes: Vec<Node<T>>,
}

impl<T: Float> Tape<T> {
    pub fn new(training: bool) -> Self {
        Tape {
            training,
            values: vec![],
            shapes: vec![],
            needs_grad: vec![],
            grads: vec![],
            nodes: vec![],
        }
    }

    fn push(&mut self, data: Vec<T>, shape: Vec<usize>, needs_grad: bool) -> Var {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        self.values.push(data);
        self.shapes.push(shape);
        self.needs_grad.push(needs_grad);
        Var(self.values.len() - 1)
    }

    /// Only a training tape keeps nodes: an inference pass never runs backward.
    fn record(&mut self, node: Node<T>) {
        if self.training {
            self.nodes.push(node);
        }
    }

    /// A leaf (the batch of pictures); data, so it needs no gradient.
    pub fn input(&mut self, data: Vec<T>, shape: &[usize]) -> Var {
        self.push(data, shape.to_vec(), false)
    }

    pub fn value(&self, v: Var) -> &[T] {
        &self.values[v.0]
    }

    pub fn shape(&self, v: Var) -> &[usize] {
        &self.shapes[v.0]
    }

    /// Gradient of a value after [`Tape::backward`]; empty if nothing flowed into it (always so
    /// for values that need none: inputs and what parameter-free ops make of them).
    pub fn grad(&self, v: Var) -> &[T] {
        &self.grads[v.0]
    }

    /// `[B, F, D]` pictures → `[B, S, C]` feature channels. The pictures are data and the layer
    /// has no parameters, so nothing is recorded for backward.
    pub fn features(&mut self, x: Var, spec: &FeatureSpec) -> Var {
        assert!(
            !self.needs_grad[x.0],
            "the feature layer takes data (the pictures), not a value that needs a gradient"
        );
        let b = self.shapes[x.0][0];
        let (s, c) = (spec.steps(), spec.channels());
        let mut out = vec![T::zero(); b * s * c];
        ts_features::ts_features_forward(&mut out, &self.values[x.0], b, spec);
        self.push(out, vec![b, s, c], false)
    }

    /// `[B, S, C]` → `[B, S', 3C]` (mean, max, min over windows of the steps).
    pub fn pool(&mut self, x: Var, window: usize, stride: usize) -> Var {
        let (b, steps, c) = dims3(&self.shapes[x.0]);
        let s2 = (steps - window) / stride + 1;
        let mut out = vec![T::zero(); b * s2 * 3 * c];
        pooling::pool_forward(&mut out, &self.values[x.0], b, steps, c, window, stride);
        let y = self.push(out, vec![b, s2, 3 * c], self.needs_grad[x.0]);
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
            return self.push(out, shape, true);
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
        let y = self.push(out, shape, true);
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
        let (cache_len, forward, _) = kind.ops::<T>();
        let mut cache = vec![T::zero(); cache_len(b, s, h)];
        forward(&mut out, &mut cache, xv, wi, wh, bias, b, s, i, h);
        let y = self.push(out, vec![b, h], true);
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
        let y = self.push(out, vec![rows, o], true);
        self.record(Node::Dense { x, y, w, b });
        y
    }

    pub fn relu(&mut self, x: Var) -> Var {
        let n = self.values[x.0].len();
        let mut out = vec![T::zero(); n];
        elementwise::relu_forward(&mut out, &self.values[x.0], n);
        let y = self.push(out, self.shapes[x.0].clone(), self.needs_grad[x.0]);
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
        let y = self.push(out, self.shapes[x.0].clone(), self.needs_grad[x.0]);
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
        let needs_grad = xs.iter().any(|v| self.needs_grad[v.0]);
        let y = self.push(out, vec![rows, total], needs_grad);
        self.record(Node::Concat { xs: xs.to_vec(), y });
        y
    }

    /// Seeds `∂L/∂root = droot` and replays the tape backward, accumulating parameter
    /// gradients into `store.grad`.
    pub fn backward(&mut self, root: Var, droot: &[T], store: &mut ParamStore<T>) {
        self.grads = vec![vec![]; self.values.len()];
        self.grad_buf(root).copy_from_slice(droot);
        let nodes = std::mem::take(&mut self.nodes);
        let mut done = vec![false; nodes.len()];
        for (n, node) in nodes.iter().enumerate().rev() {
            if done[n] || !self.needs_grad[node.output().0] {
                continue;
            }
            match self.foldable_batchnorm(&nodes, n) {
                Some(bn) => {
                    self.backward_recurrent_after_bn(node, &nodes[bn], store);
                    done[bn] = true;
                }
                None => self.backward_node(node, store),
            }
        }
        self.nodes = nodes;
    }

    /// The gradient buffer of `v`, zeroed on first use; empty for a value that needs none (which
    /// is how the ops are told to skip an input gradient).
    fn grad_buf(&mut self, v: Var) -> &mut [T] {
        if self.needs_grad[v.0] && self.grads[v.0].is_empty() {
            self.grads[v.0] = vec![T::zero(); self.values[v.0].len()];
        }
        &mut self.grads[v.0]
    }

    /// Moves the gradient of an op's output out of the tape (each value has one producer).
    fn take_dy(&mut self, y: Var) -> Vec<T> {
        let dy = std::mem::take(&mut self.grads[y.0]);
        if dy.is_empty() {
            vec![T::zero(); self.values[y.0].len()]
        } else {
            dy
        }
    }

    /// For the recurrent node `n`: the BatchNorm node that made its input, when that BatchNorm's
    /// own input is data and the recurrent layer is its output's only consumer (the pattern of
    /// every model: features → BN → LSTM/GRU).
    fn foldable_batchnorm(&self, nodes: &[Node<T>], n: usize) -> Option<usize> {
        let Node::Recurrent { x, .. } = &nodes[n] else {
            return None;
        };
        let consumers = nodes.iter().filter(|m| m.inputs().contains(x)).count();
        nodes.iter().position(|m| {
            matches!(m, Node::BatchNorm { x: bx, y, .. } if y == x && !self.needs_grad[bx.0])
                && consumers == 1
        })
    }

    /// Backward of `BN(data) → recurrent` without the recurrent layer's input gradient.
    ///
    /// With `a = γ·x̂ + β` the layer's input and `dZ` its input-side gate gradients, the BN needs
    /// `dγ_c = Σ_r x̂_rc·(dZ·W_ihᵀ)_rc = Σ_g W_ih[c,g]·N[c,g]` and `dβ_c = Σ_g W_ih[c,g]·q_g`, where
    /// `N = x̂ᵀ·dZ` and `q = Σ_r dZ_r`; and `dW_ih = aᵀ·dZ = γ⊙N + β⊗q`. So running the layer's
    /// backward on `x̂` with no input gradient gives everything, and the largest product of the
    /// step, `dZ·W_ihᵀ` (`[B·S, G] × [G, I]`), is never formed.
    fn backward_recurrent_after_bn(
        &mut self,
        rec: &Node<T>,
        bn: &Node<T>,
        store: &mut ParamStore<T>,
    ) {
        let (
            Node::Recurrent {
                kind,
                x,
                y,
                w,
                cache,
            },
            Node::BatchNorm {
                x: bx,
                gamma,
                beta,
                mean,
                var,
                eps,
                ..
            },
        ) = (rec, bn)
        else {
            unreachable!("backward_recurrent_after_bn on other nodes")
        };
        let dy = self.take_dy(*y);
        let (b, s, i) = dims3(&self.shapes[x.0]);
        let h = store.entry(w[1]).shape[0];
        let mut xhat = vec![T::zero(); b * s * i];
        batchnorm::batchnorm_inference(
            &mut xhat,
            &self.values[bx.0],
            &vec![T::one(); i],
            &vec![T::zero(); i],
            mean,
            var,
            b * s,
            i,
            *eps,
        );
        let (wi, wh) = (store.get(w[0]).to_vec(), store.get(w[1]).to_vec());
        let g = wi.len() / i;
        let mut nmat = vec![T::zero(); wi.len()];
        let mut dwh = vec![T::zero(); wh.len()];
        let mut db = vec![T::zero(); store.get(w[2]).len()];
        (kind.ops::<T>().2)(
            &mut [],
            &mut nmat,
            &mut dwh,
            &mut db,
            &dy,
            cache,
            &xhat,
            &wi,
            &wh,
            b,
            s,
            i,
            h,
        );
        // Both layers put the input-side bias (the one added to x·W_ih) first.
        let q = &db[..g];
        let (gm, bt) = (store.get(*gamma).to_vec(), store.get(*beta).to_vec());
        let (mut dgamma, mut dbeta) = (vec![T::zero(); i], vec![T::zero(); i]);
        let mut dwi = vec![T::zero(); wi.len()];
        for c in 0..i {
            let (wrow, nrow) = (&wi[c * g..][..g], &nmat[c * g..][..g]);
            for k in 0..g {
                dgamma[c] += wrow[k] * nrow[k];
                dbeta[c] += wrow[k] * q[k];
                dwi[c * g + k] = gm[c] * nrow[k] + bt[c] * q[k];
            }
        }
        add_into(store.grad_mut(*gamma), &dgamma);
        add_into(store.grad_mut(*beta), &dbeta);
        add_into(store.grad_mut(w[0]), &dwi);
        add_into(store.grad_mut(w[1]), &dwh);
        add_into(store.grad_mut(w[2]), &db);
    }

    fn backward_node(&mut self, node: &Node<T>, store: &mut ParamStore<T>) {
        match node {
            Node::Pool {
                x,
                y,
                steps,
                window,
                stride,
            } => {
                let dy = self.take_dy(*y);
                let (b, _, c) = dims3(&self.shapes[x.0]);
                self.grad_buf(*x);
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
                self.grad_buf(*x);
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
                self.grad_buf(*x);
                let dx = &mut self.grads[x.0];
                (kind.ops::<T>().2)(
                    dx,
                    &mut dwi,
                    &mut dwh,
                    &mut db,
                    &dy,
                    cache,
                    &self.values[x.0],
                    &wi,
                    &wh,
                    b,
                    s,
                    i,
                    h,
                );
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
                self.grad_buf(*x);
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
                self.grad_buf(*x);
                elementwise::relu_backward(&mut self.grads[x.0], &dy, &self.values[x.0], n);
            }
            Node::Dropout { x, y, mask } => {
                let dy = self.take_dy(*y);
                let n = dy.len();
                self.grad_buf(*x);
                elementwise::dropout_backward(&mut self.grads[x.0], &dy, mask, n);
            }
            Node::Concat { xs, y } => {
                let dy = self.take_dy(*y);
                let rows = self.shapes[y.0][0];
                let total = dy.len() / rows;
                let mut col = 0;
                for v in xs {
                    let wd = self.values[v.0].len() / rows;
                    let g = self.grad_buf(*v);
                    if g.is_empty() {
                        col += wd;
                        continue;
                    }
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

impl<T> Node<T> {
    fn inputs(&self) -> Vec<Var> {
        match self {
            Node::Pool { x, .. }
            | Node::BatchNorm { x, .. }
            | Node::Recurrent { x, .. }
            | Node::Dense { x, .. }
            | Node::Relu { x, .. }
            | Node::Dropout { x, .. } => vec![*x],
            Node::Concat { xs, .. } => xs.clone(),
        }
    }

    fn output(&self) -> Var {
        match self {
            Node::Pool { y, .. }
            | Node::BatchNorm { y, .. }
            | Node::Recurrent { y, .. }
            | Node::Dense { y, .. }
            | Node::Relu { y, .. }
            | Node::Dropout { y, .. }
            | Node::Concat { y, .. } => *y,
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
