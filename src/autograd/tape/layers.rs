//! The tape's recording API: one method per layer, each running the layer's forward on the
//! device and, on a training tape, recording the node its backward needs (`backward.rs`).

use super::{dims3, BnState, Node, Tape, Var};
use crate::autograd::params::ParamId;
use crate::device::{Device, Params};
use crate::error::Result;
use crate::ops::elementwise::Activation;
use crate::ops::pooling::pooled_steps;
use crate::ops::recurrent::Recurrent;
use std::borrow::{Borrow, BorrowMut};

impl<D: Device> Tape<'_, D> {
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

    /// `y = act(x)` elementwise (ReLU, tanh: `ops::elementwise::Activation`).
    pub fn activation(&mut self, act: Activation, x: Var) -> Result<Var> {
        let n = D::len(self.val(x));
        let mut out = self.dev.scratch(n)?;
        self.dev
            .activation_forward(act, out.borrow_mut(), self.val(x), n)?;
        let y = self.push(out, self.shapes[x.0].clone(), self.needs_grad[x.0]);
        self.record(Node::Activation { act, x, y });
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
}
