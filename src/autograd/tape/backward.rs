//! The backward pass: the recorded nodes replayed last to first, each calling its op's
//! backward on the device, which accumulates (`+=`) into the gradients of its inputs (those
//! that need one) and parameters.

use super::{dims3, Node, Tape, Var};
use crate::device::{Device, Params};
use crate::error::Result;
use std::borrow::{Borrow, BorrowMut};

impl<D: Device> Tape<'_, D> {
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
            Node::Activation { act, x, y } => {
                let dy = self.take_dy(*y)?;
                let n = D::len(dy.borrow());
                self.ensure_grad(*x)?;
                let Some(dx) = self.grads[x.0].as_mut() else {
                    return Ok(());
                };
                dev.activation_backward(
                    *act,
                    dx.borrow_mut(),
                    dy.borrow(),
                    self.values[x.0].get().borrow(),
                    self.values[y.0].get().borrow(),
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
