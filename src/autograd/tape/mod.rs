//! A tape of recorded ops, replayed in reverse for the backward pass (micrograd-sized).
//!
//! The tape runs on any [`Device`]: values live in it as the device's buffers with a shape;
//! parameters live in the device's [`Params`](crate::device::Params) and are referenced by
//! [`ParamId`]. `backward` walks the nodes last to first and calls each op's backward, which
//! accumulates (`+=`) into the gradients of its inputs and parameters.
//!
//! Inputs are data: no gradient is computed for them, nor for anything derived from them by
//! parameter-free ops (the feature layer, whose backward is the costliest op of the model, is
//! never replayed), and a layer whose input needs no gradient computes only its parameters'.
//!
//! Files: this one holds the values (`Var`, `BnState`), the recorded nodes and the tape's
//! storage; `layers.rs` records each layer's forward (one method per layer), `backward.rs`
//! replays the nodes. Both are `impl Tape` blocks, so the tape's fields stay private to it.

use super::params::ParamId;
use crate::device::Device;
use crate::ops::elementwise::Activation;
use crate::ops::recurrent::Recurrent;
use std::borrow::Borrow;

mod backward;
mod layers;

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
    Activation {
        act: Activation,
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
}

impl<D: Device> Node<D> {
    fn output(&self) -> Var {
        match self {
            Node::Pool { y, .. }
            | Node::BatchNorm { y, .. }
            | Node::Recurrent { y, .. }
            | Node::BnRecurrent { y, .. }
            | Node::Dense { y, .. }
            | Node::Activation { y, .. }
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
