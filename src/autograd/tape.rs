//! A tape of recorded ops, replayed in reverse for the backward pass (micrograd-sized).
//!
//! The tape runs on any [`Device`]: values live in it as the device's buffers with a shape;
//! parameters live in the device's [`Params`] and are referenced by [`ParamId`]. `backward`
//! walks the nodes last to first and calls each op's backward, which accumulates (`+=`) into the
//! gradients of its inputs and parameters.
//!
//! Inputs are data: no gradient is computed for them, nor for anything derived from them by
//! parameter-free ops (the feature layer, whose backward is the costliest op of the model, is
//! never replayed), and a layer whose input needs no gradient computes only its parameters'.

use super::params::ParamId;
use crate::device::{Device, Params};
use crate::error::Result;
use crate::ops::pooling::pooled_steps;
use crate::ops::recurrent::Recurrent;
use std::borrow::{Borrow, BorrowMut};

/// A value recorded on the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var(pub usize);

/// Moving statistics of one BatchNorm layer (state, not trained by Adam), in buffers `B` of the
/// device the model lives on (`Vec<T>` on the host).
#[derive(Debug, Clone)]
pub struct BnState<B> {
    pub moving_mean: B,
    pub moving_var: B,
    pub eps: f64,
    pub momentum: f64,
}

impl<T: crate::util::float::Float> BnState<Vec<T>> {
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

enum Node<D: Device> {
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
        mean: D::Buf,
        var: D::Buf,
        eps: f64,
    },
    Recurrent {
        kind: Recurrent,
        x: Var,
        y: Var,
        w: [ParamId; 3],
        cache: D::Buf,
    },
    /// `recurrent(batchnorm(x))` for data `x`, see [`Tape::bn_recurrent`]; `a` is the BN output.
    BnRecurrent {
        x: Var,
        a: Var,
        y: Var,
        bn: [ParamId; 2],
        mean: D::Buf,
        var: D::Buf,
        eps: f64,
        kind: Recurrent,
        w: [ParamId; 3],
        cache: D::Buf,
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
        mask: D::Buf,
    },
    /// Row-wise concatenation of the flattened inputs.
    Concat {
        xs: Vec<Var>,
        y: Var,
    },
}

/// A value on the tape: made by a recorded op, or the batch's pictures, borrowed (the largest
/// tensor of a step, read by the first layer only; a copy per step would buy nothing).
enum Value<'d, B> {
    Owned(B),
    Input(&'d B),
}

impl<B> Value<'_, B> {
    fn get(&self) -> &B {
        match self {
            Value::Owned(b) => b,
            Value::Input(b) => b,
        }
    }
}

/// The recorded forward pass of one batch on device `D`; `'d` is the device's and the input's.
pub struct Tape<'d, D: Device> {
    dev: &'d D,
    /// Training mode: batch statistics in BN (and moving-stat updates), dropout active.
    pub training: bool,
    values: Vec<Value<'d, D::Buf>>,
    shapes: Vec<Vec<usize>>,
    /// Whether a gradient flows into each value (it depends on a parameter).
    needs_grad: Vec<bool>,
    grads: Vec<Option<D::Buf>>,
    nodes: Vec<Node<D>>,
}

impl<'d, D: Device> Tape<'d, D> {
    pub fn new(dev: &'d D, training: bool) -> Self {
        Tape {
            dev,
            training,
            values: vec![],
            shapes: vec![],
            needs_grad: vec![],
            grads: vec![],
            nodes: vec![],
        }
    }

    fn push(&mut self, data: D::Buf, shape: Vec<usize>, needs_grad: bool) -> Var {
        self.push_value(Value::Owned(data), shape, needs_grad)
    }

    fn push_value(&mut self, data: Value<'d, D::Buf>, shape: Vec<usize>, needs_grad: bool) -> Var {
        debug_assert_eq!(D::len(data.get().borrow()), shape.iter().product::<usize>());
        self.values.push(data);
        self.shapes.push(shape);
        self.needs_grad.push(needs_grad);
        Var(self.values.len() - 1)
    }

    /// Only a training tape keeps nodes: an inference pass never runs backward.
    fn record(&mut self, node: Node<D>) {
        if self.training {
            self.nodes.push(node);
        }
    }

    fn val(&self, v: Var) -> &D::Slice {
        self.values[v.0].get().borrow()
    }

    /// A leaf (the batch of pictures); data, so it needs no gradient.
    pub fn input(&mut self, data: &'d D::Buf, shape: &[usize]) -> Var {
        self.push_value(Value::Input(data), shape.to_vec(), false)
    }

    pub fn value(&self, v: Var) -> &D::Slice {
        self.val(v)
    }

    pub fn shape(&self, v: Var) -> &[usize] {
        &self.shapes[v.0]
    }

    /// Gradient of a value after [`Tape::backward`]; `None` if nothing flowed into it (always so
    /// for values that need none: inputs and what parameter-free ops make of them).
    pub fn grad(&self, v: Var) -> Option<&D::Slice> {
        self.grads.get(v.0)?.as_ref().map(|g| g.borrow())
    }

    /// The pictures `[B, 15, 30]`, each rescaled on its own (src/ops/normalize.rs). Data in,
    /// data out: nothing is recorded.
    pub fn normalize_pictures(&mut self, x: Var) -> Result<Var> {
        assert!(
            !self.needs_grad[x.0],
            "normalize_pictures takes data (the pictures), not a value that needs a gradient"
        );
        let b = self.shapes[x.0][0];
        let mut out = self.dev.scratch(D::len(self.val(x)))?;
        self.dev
            .normalize_pictures(out.borrow_mut(), self.val(x), b)?;
        Ok(self.push(out, self.shapes[x.0].clone(), false))
    }

    /// `[B, F, D]` pictures → `[B, S, C]` feature channels. The pictures are data and the layer
    /// has no parameters, so nothing is recorded for backward.
    pub fn features(&mut self, x: Var, spec: &D::Spec) -> Result<Var> {
        assert!(
            !self.needs_grad[x.0],
            "the feature layer takes data (the pictures), not a value that needs a gradient"
        );
        let b = self.shapes[x.0][0];
        let dims = D::spec_dims(spec);
        let (s, c) = (dims.steps(), dims.channels());
        let mut out = self.dev.scratch(b * s * c)?;
        self.dev
            .ts_features_forward(out.borrow_mut(), self.val(x), b, spec)?;
        Ok(self.push(out, vec![b, s, c], false))
    }

    /// `[B, S, C]` → `[B, S', 3C]` (mean, max, min over windows of the steps).
    pub fn pool(&mut self, x: Var, window: usize, stride: usize) -> Result<Var> {
        let (b, steps, c) = dims3(&self.shapes[x.0]);
        let s2 = pooled_steps(steps, window, stride);
        let mut out = self.dev.scratch(b * s2 * 3 * c)?;
        self.dev
            .pool_forward(out.borrow_mut(), self.val(x), b, steps, c, window, stride)?;
        let y = self.push(out, vec![b, s2, 3 * c], self.needs_grad[x.0]);
        self.record(Node::Pool {
            x,
            y,
            steps,
            window,
            stride,
        });
        Ok(y)
    }

    /// BatchNorm over the last axis (statistics over all leading axes). In training mode it
    /// normalizes with batch statistics and updates `state`'s moving averages.
    pub fn batchnorm(
        &mut self,
        x: Var,
        params: &D::Params,
        [gamma, beta]: [ParamId; 2],
        state: &mut BnState<D::Buf>,
    ) -> Result<Var> {
        let dev = self.dev;
        let shape = self.shapes[x.0].clone();
        let c = *shape.last().expect("batchnorm of a scalar");
        let r = shape.iter().product::<usize>() / c;
        let mut out = dev.scratch(r * c)?;
        let (g, bt) = (params.value(gamma), params.value(beta));
        if !self.training {
            dev.batchnorm_inference(
                out.borrow_mut(),
                self.val(x),
                g,
                bt,
                state.moving_mean.borrow(),
                state.moving_var.borrow(),
                r,
                c,
                state.eps,
            )?;
            return Ok(self.push(out, shape, true));
        }
        let (mut mean, mut var) = (dev.scratch(c)?, dev.scratch(c)?);
        dev.batchnorm_forward(
            out.borrow_mut(),
            mean.borrow_mut(),
            var.borrow_mut(),
            self.val(x),
            g,
            bt,
            r,
            c,
            state.eps,
        )?;
        dev.batchnorm_update_moving(
            state.moving_mean.borrow_mut(),
            state.moving_var.borrow_mut(),
            mean.borrow(),
            var.borrow(),
            c,
            state.momentum,
        )?;
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
        Ok(y)
    }

    /// LSTM or GRU over the steps of `[B, S, I]`; returns the last hidden state `[B, H]`.
    /// `w` = [input kernel, recurrent kernel, bias].
    pub fn recurrent(
        &mut self,
        kind: Recurrent,
        x: Var,
        params: &D::Params,
        w: [ParamId; 3],
    ) -> Result<Var> {
        let dev = self.dev;
        let (b, s, i) = dims3(&self.shapes[x.0]);
        let h = params.entry(w[1]).shape[0];
        let mut out = dev.scratch(b * h)?;
        let mut cache = dev.scratch(D::recurrent_cache_len(kind, b, s, h))?;
        let [wi, wh, bias] = w.map(|id| params.value(id));
        dev.recurrent_forward(
            kind,
            out.borrow_mut(),
            cache.borrow_mut(),
            self.val(x),
            wi,
            wh,
            bias,
            b,
            s,
            i,
            h,
        )?;
        let y = self.push(out, vec![b, h], true);
        self.record(Node::Recurrent {
            kind,
            x,
            y,
            w,
            cache,
        });
        Ok(y)
    }

    /// `recurrent(batchnorm(x))` over data `x`, the head of every model (features → BN →
    /// LSTM/GRU), recorded as one node. `x` is data, so no input gradient flows and the pair's
    /// backward needs only the parameters' gradients, which each device computes by its cheapest
    /// route ([`Device::bn_recurrent_backward`]: the CPU never forms the recurrent layer's input
    /// gradient `dZ·W_ihᵀ`, the largest product of the step).
    pub fn bn_recurrent(
        &mut self,
        x: Var,
        params: &D::Params,
        bn: [ParamId; 2],
        state: &mut BnState<D::Buf>,
        kind: Recurrent,
        w: [ParamId; 3],
    ) -> Result<Var> {
        assert!(
            !self.needs_grad[x.0],
            "bn_recurrent takes data; use batchnorm and recurrent for a value that needs a gradient"
        );
        let a = self.batchnorm(x, params, bn, state)?;
        let y = self.recurrent(kind, a, params, w)?;
        if self.training {
            // The two nodes just recorded become one.
            let (Some(Node::Recurrent { cache, .. }), Some(Node::BatchNorm { mean, var, eps, .. })) =
                (self.nodes.pop(), self.nodes.pop())
            else {
                unreachable!("batchnorm then recurrent record one node each")
            };
            self.nodes.push(Node::BnRecurrent {
                x,
                a,
                y,
                bn,
                mean,
                var,
                eps,
                kind,
                w,
                cache,
            });
        }
        Ok(y)
    }

    /// `[B, I]` (or any `[B, …]`, flattened) → `[B, O]`.
    pub fn dense(&mut self, x: Var, params: &D::Params, [w, b]: [ParamId; 2]) -> Result<Var> {
        let rows = self.shapes[x.0][0];
        let wshape = &params.entry(w).shape;
        let (i, o) = (wshape[0], wshape[1]);
        let mut out = self.dev.scratch(rows * o)?;
        self.dev.dense_forward(
            out.borrow_mut(),
            self.val(x),
            params.value(w),
            params.value(b),
            rows,
            i,
            o,
        )?;
        let y = self.push(out, vec![rows, o], true);
        self.record(Node::Dense { x, y, w, b });
        Ok(y)
    }

    pub fn relu(&mut self, x: Var) -> Result<Var> {
        let n = D::len(self.val(x));
        let mut out = self.dev.scratch(n)?;
        self.dev.relu_forward(out.borrow_mut(), self.val(x), n)?;
        let y = self.push(out, self.shapes[x.0].clone(), self.needs_grad[x.0]);
        self.record(Node::Relu { x, y });
        Ok(y)
    }

    /// Inverted dropout with rate `p` in training mode; the identity otherwise.
    pub fn dropout(&mut self, x: Var, p: f64, seed: u64) -> Result<Var> {
        if !self.training || p == 0.0 {
            return Ok(x);
        }
        let n = D::len(self.val(x));
        let (mut out, mut mask) = (self.dev.scratch(n)?, self.dev.scratch(n)?);
        self.dev
            .dropout_forward(out.borrow_mut(), mask.borrow_mut(), self.val(x), n, p, seed)?;
        let y = self.push(out, self.shapes[x.0].clone(), self.needs_grad[x.0]);
        self.record(Node::Dropout { x, y, mask });
        Ok(y)
    }

    /// Flattens each input to `[B, ·]` and concatenates them along the second axis.
    pub fn concat(&mut self, xs: &[Var]) -> Result<Var> {
        let rows = self.shapes[xs[0].0][0];
        let widths: Vec<usize> = xs.iter().map(|v| D::len(self.val(*v)) / rows).collect();
        let total: usize = widths.iter().sum();
        let mut out = self.dev.scratch(rows * total)?;
        let mut col = 0;
        for (v, &wd) in xs.iter().zip(&widths) {
            self.dev
                .concat_forward(out.borrow_mut(), self.val(*v), rows, wd, total, col)?;
            col += wd;
        }
        let needs_grad = xs.iter().any(|v| self.needs_grad[v.0]);
        let y = self.push(out, vec![rows, total], needs_grad);
        self.record(Node::Concat { xs: xs.to_vec(), y });
        Ok(y)
    }

    /// Seeds `∂L/∂root = droot` and replays the tape backward, accumulating parameter
    /// gradients into `params`.
    pub fn backward(&mut self, root: Var, droot: D::Buf, params: &mut D::Params) -> Result<()> {
        self.grads = (0..self.values.len()).map(|_| None).collect();
        self.grads[root.0] = Some(droot);
        let nodes = std::mem::take(&mut self.nodes);
        for node in nodes.iter().rev() {
            if self.needs_grad[node.output().0] {
                self.backward_node(node, params)?;
            }
        }
        self.nodes = nodes;
        Ok(())
    }

    /// Allocates (zeroed) the gradient buffer of `v` if it needs one and has none yet.
    fn ensure_grad(&mut self, v: Var) -> Result<()> {
        if self.needs_grad[v.0] && self.grads[v.0].is_none() {
            let n = D::len(self.val(v));
            self.grads[v.0] = Some(self.dev.zeros(n)?);
        }
        Ok(())
    }

    /// Moves the gradient of an op's output out of the tape (each value has one producer).
    fn take_dy(&mut self, y: Var) -> Result<D::Buf> {
        match self.grads[y.0].take() {
            Some(dy) => Ok(dy),
            None => self.dev.zeros(D::len(self.val(y))),
        }
    }

    fn backward_node(&mut self, node: &Node<D>, params: &mut D::Params) -> Result<()> {
        let dev = self.dev;
        match node {
            Node::Pool {
                x,
                y,
                steps,
                window,
                stride,
            } => {
                let dy = self.take_dy(*y)?;
                let (b, _, c) = dims3(&self.shapes[x.0]);
                self.ensure_grad(*x)?;
                let Some(dx) = self.grads[x.0].as_mut() else {
                    return Ok(());
                };
                dev.pool_backward(
                    dx.borrow_mut(),
                    dy.borrow(),
                    self.values[x.0].get().borrow(),
                    b,
                    *steps,
                    c,
                    *window,
                    *stride,
                )
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
                let dy = self.take_dy(*y)?;
                let c = D::len(mean.borrow());
                let r = D::len(dy.borrow()) / c;
                self.ensure_grad(*x)?;
                let dx = self.grads[x.0].as_mut().map(BorrowMut::borrow_mut);
                let ([g, _], [dg, db]) = params.value_and_grads([*gamma, *beta]);
                dev.batchnorm_backward(
                    dx,
                    dg,
                    db,
                    dy.borrow(),
                    self.values[x.0].get().borrow(),
                    mean.borrow(),
                    var.borrow(),
                    g,
                    r,
                    c,
                    *eps,
                )
            }
            Node::Recurrent {
                kind,
                x,
                y,
                w,
                cache,
            } => {
                let dy = self.take_dy(*y)?;
                let (b, s, i) = dims3(&self.shapes[x.0]);
                let h = params.entry(w[1]).shape[0];
                self.ensure_grad(*x)?;
                let dx = self.grads[x.0].as_mut().map(BorrowMut::borrow_mut);
                let ([wi, wh, _], dw) = params.value_and_grads(*w);
                dev.recurrent_backward(
                    *kind,
                    dx,
                    dw,
                    dy.borrow(),
                    cache.borrow(),
                    self.values[x.0].get().borrow(),
                    wi,
                    wh,
                    b,
                    s,
                    i,
                    h,
                )
            }
            Node::BnRecurrent {
                x,
                a,
                y,
                bn,
                mean,
                var,
                eps,
                kind,
                w,
                cache,
            } => {
                let dy = self.take_dy(*y)?;
                let (b, s, i) = dims3(&self.shapes[a.0]);
                let h = params.entry(w[1]).shape[0];
                let (v, grads) = params.value_and_grads([bn[0], bn[1], w[0], w[1], w[2]]);
                dev.bn_recurrent_backward(
                    *kind,
                    grads,
                    dy.borrow(),
                    cache.borrow(),
                    self.values[x.0].get().borrow(),
                    self.values[a.0].get().borrow(),
                    mean.borrow(),
                    var.borrow(),
                    *eps,
                    [v[0], v[1], v[2], v[3]],
                    b,
                    s,
                    i,
                    h,
                )
            }
            Node::Dense { x, y, w, b } => {
                let dy = self.take_dy(*y)?;
                let rows = self.shapes[x.0][0];
                let wshape = &params.entry(*w).shape;
                let (i, o) = (wshape[0], wshape[1]);
                self.ensure_grad(*x)?;
                let dx = self.grads[x.0].as_mut().map(BorrowMut::borrow_mut);
                let ([wv, _], [dw, db]) = params.value_and_grads([*w, *b]);
                dev.dense_backward(
                    dx,
                    dw,
                    db,
                    dy.borrow(),
                    self.values[x.0].get().borrow(),
                    wv,
                    rows,
                    i,
                    o,
                )
            }
            Node::Relu { x, y } => {
                let dy = self.take_dy(*y)?;
                let n = D::len(dy.borrow());
                self.ensure_grad(*x)?;
                let Some(dx) = self.grads[x.0].as_mut() else {
                    return Ok(());
                };
                dev.relu_backward(
                    dx.borrow_mut(),
                    dy.borrow(),
                    self.values[x.0].get().borrow(),
                    n,
                )
            }
            Node::Dropout { x, y, mask } => {
                let dy = self.take_dy(*y)?;
                let n = D::len(dy.borrow());
                self.ensure_grad(*x)?;
                let Some(dx) = self.grads[x.0].as_mut() else {
                    return Ok(());
                };
                dev.dropout_backward(dx.borrow_mut(), dy.borrow(), mask.borrow(), n)
            }
            Node::Concat { xs, y } => {
                let dy = self.take_dy(*y)?;
                let rows = self.shapes[y.0][0];
                let total = D::len(dy.borrow()) / rows;
                let mut col = 0;
                for v in xs {
                    let wd = D::len(self.val(*v)) / rows;
                    self.ensure_grad(*v)?;
                    if let Some(dx) = self.grads[v.0].as_mut() {
                        dev.concat_backward(dx.borrow_mut(), dy.borrow(), rows, wd, total, col)?;
                    }
                    col += wd;
                }
                Ok(())
            }
        }
    }
}

impl<D: Device> Node<D> {
    fn output(&self) -> Var {
        match self {
            Node::Pool { y, .. }
            | Node::BatchNorm { y, .. }
            | Node::Recurrent { y, .. }
            | Node::BnRecurrent { y, .. }
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
