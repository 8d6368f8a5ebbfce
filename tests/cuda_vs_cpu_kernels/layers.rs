//! The network's layers: pooling, batchnorm, the BN → recurrent fold, dense, LSTM and GRU, ReLU,
//! concat and dropout.

use crate::common::gpu::{Out, Tol, ELEMENT, EXACT};
use crate::common::uniform;
use crate::{down, up, N};
use alphanet::cuda::Gpu;
use alphanet::ops::batchnorm::*;
use alphanet::ops::dense::{dense_backward, dense_forward};
use alphanet::ops::elementwise::*;
use alphanet::ops::pooling::{pool_backward, pool_forward, pooled_steps};
use alphanet::ops::recurrent::Recurrent;
use alphanet::ops::recurrent_ops;
use alphanet::util::rng::Rng;
use alphanet::Result;

pub(crate) fn pool(
    gpu: &Gpu,
    r: &mut Rng,
    steps: usize,
    c: usize,
    window: usize,
    stride: usize,
) -> Result<Vec<Out>> {
    let b = 37;
    let n_out = b * pooled_steps(steps, window, stride) * 3 * c;
    let x = uniform(r, b * steps * c, -1.0, 1.0);
    let (dout, dx0) = (uniform(r, n_out, -1.0, 1.0), uniform(r, x.len(), -1.0, 1.0));
    let mut out = vec![0.0; n_out];
    pool_forward(&mut out, &x, b, steps, c, window, stride);
    let mut dx = dx0.clone();
    pool_backward(&mut dx, &dout, &x, b, steps, c, window, stride);

    let (xd, doutd) = (up(gpu, &x)?, up(gpu, &dout)?);
    let (mut outd, mut dxd) = (gpu.zeros(n_out)?, up(gpu, &dx0)?);
    gpu.pool_forward(&mut outd, &xd, b, steps, c, window, stride)?;
    gpu.pool_backward(&mut dxd, &doutd, &xd, b, steps, c, window, stride)?;
    Ok(vec![
        Out::windowed("out", down(gpu, &outd)?, &out),
        Out::windowed("dinp (+=)", down(gpu, &dxd)?, &dx),
    ])
}

pub(crate) fn batchnorm(gpu: &Gpu, r: &mut Rng, rows: usize, c: usize) -> Result<Vec<Out>> {
    let (eps, momentum) = (1e-3, 0.99);
    let x = uniform(r, rows * c, -2.0, 3.0);
    let (gamma, beta) = (uniform(r, c, 0.5, 1.5), uniform(r, c, -0.5, 0.5));
    let (mm0, mv0) = (uniform(r, c, -0.5, 0.5), uniform(r, c, 0.5, 2.0));
    let (dout, dx0) = (
        uniform(r, rows * c, -1.0, 1.0),
        uniform(r, rows * c, -1.0, 1.0),
    );
    let (dg0, db0) = (uniform(r, c, -1.0, 1.0), uniform(r, c, -1.0, 1.0));

    let (mut out, mut mean, mut var) = (vec![0.0; rows * c], vec![0.0; c], vec![0.0; c]);
    batchnorm_forward(
        &mut out, &mut mean, &mut var, &x, &gamma, &beta, rows, c, eps,
    );
    let mut inf = vec![0.0; rows * c];
    batchnorm_inference(&mut inf, &x, &gamma, &beta, &mm0, &mv0, rows, c, eps);
    let (mut dx, mut dg, mut db) = (dx0.clone(), dg0.clone(), db0.clone());
    batchnorm_backward(
        &mut dx, &mut dg, &mut db, &dout, &x, &mean, &var, &gamma, rows, c, eps,
    );
    let (mut mm, mut mv) = (mm0.clone(), mv0.clone());
    batchnorm_update_moving(&mut mm, &mut mv, &mean, &var, c, momentum);

    let (xd, gd, bd) = (up(gpu, &x)?, up(gpu, &gamma)?, up(gpu, &beta)?);
    let (mut outd, mut meand, mut vard) = (gpu.zeros(rows * c)?, gpu.zeros(c)?, gpu.zeros(c)?);
    gpu.batchnorm_forward(
        &mut outd, &mut meand, &mut vard, &xd, &gd, &bd, rows, c, eps,
    )?;
    let (mut mmd, mut mvd) = (up(gpu, &mm0)?, up(gpu, &mv0)?);
    let mut infd = gpu.zeros(rows * c)?;
    gpu.batchnorm_inference(&mut infd, &xd, &gd, &bd, &mmd, &mvd, rows, c, eps)?;
    // The backward and the moving update take the CPU's batch statistics, so each is compared
    // on its own and not through the forward's rounding.
    let (meanc, varc) = (up(gpu, &mean)?, up(gpu, &var)?);
    let (mut dxd, mut dgd, mut dbd) = (up(gpu, &dx0)?, up(gpu, &dg0)?, up(gpu, &db0)?);
    let doutd = up(gpu, &dout)?;
    gpu.batchnorm_backward(
        &mut dxd, &mut dgd, &mut dbd, &doutd, &xd, &meanc, &varc, &gd, rows, c, eps,
    )?;
    gpu.batchnorm_update_moving(&mut mmd, &mut mvd, &meanc, &varc, c, momentum)?;
    // The moving statistics move by (1 − momentum)·(batch − moving) ≈ 1e-2 a step: compared as
    // that change, which a skipped or wrong update gets wrong by its whole size, where their
    // values differ from the previous ones by less than a value tolerance. Both sides round
    // m·old + (1 − m)·batch once or twice, an ulp of O(1) (2.4e-7 at 2): atol 1e-6.
    let change = |new: Vec<f32>, old: &[f32]| -> Vec<f32> {
        new.iter().zip(old).map(|(a, b)| a - b).collect()
    };
    let moving_tol = Tol {
        atol: 1e-6,
        rtol: 1e-4,
    };
    Ok(vec![
        Out::windowed("out", down(gpu, &outd)?, &out),
        Out::windowed("mean", down(gpu, &meand)?, &mean),
        Out::windowed("var", down(gpu, &vard)?, &var),
        Out::new("inference out", down(gpu, &infd)?, &inf, ELEMENT),
        Out::windowed("dinp (+=)", down(gpu, &dxd)?, &dx),
        Out::windowed("dgamma (+=)", down(gpu, &dgd)?, &dg),
        Out::windowed("dbeta (+=)", down(gpu, &dbd)?, &db),
        Out::new(
            "moving mean change",
            change(down(gpu, &mmd)?, &mm0),
            &change(mm, &mm0),
            moving_tol,
        ),
        Out::new(
            "moving var change",
            change(down(gpu, &mvd)?, &mv0),
            &change(mv, &mv0),
            moving_tol,
        ),
    ])
}

/// The fold of BN(data) → recurrent layer's parameter gradients, on random N, biases and weights,
/// into gradients that already hold values (it adds).
pub(crate) fn fold(gpu: &Gpu, r: &mut Rng, c: usize, g: usize, nb: usize) -> Result<Vec<Out>> {
    let (nmat, wi) = (uniform(r, c * g, -1.0, 1.0), uniform(r, c * g, -0.3, 0.3));
    let (db_local, gamma, beta) = (
        uniform(r, nb, -1.0, 1.0),
        uniform(r, c, 0.5, 1.5),
        uniform(r, c, -0.5, 0.5),
    );
    let init = [c, c, c * g, nb].map(|n| uniform(r, n, -1.0, 1.0));
    let [mut dg, mut dbeta, mut dwi, mut db] = init.clone();
    bn_recurrent_fold(
        &mut dg, &mut dbeta, &mut dwi, &mut db, &nmat, &db_local, &gamma, &beta, &wi, c, g,
    );
    let [mut dgd, mut dbetad, mut dwid, mut dbd] = [
        up(gpu, &init[0])?,
        up(gpu, &init[1])?,
        up(gpu, &init[2])?,
        up(gpu, &init[3])?,
    ];
    gpu.bn_recurrent_fold(
        &mut dgd,
        &mut dbetad,
        &mut dwid,
        &mut dbd,
        &*up(gpu, &nmat)?,
        &*up(gpu, &db_local)?,
        &*up(gpu, &gamma)?,
        &*up(gpu, &beta)?,
        &*up(gpu, &wi)?,
        c,
        g,
    )?;
    Ok(vec![
        Out::windowed("dgamma (+=)", down(gpu, &dgd)?, &dg),
        Out::windowed("dbeta (+=)", down(gpu, &dbetad)?, &dbeta),
        Out::new("dw_ih (+=)", down(gpu, &dwid)?, &dwi, ELEMENT),
        Out::new("dbias (+=)", down(gpu, &dbd)?, &db, EXACT),
    ])
}

pub(crate) fn dense(gpu: &Gpu, r: &mut Rng, b: usize, i: usize, o: usize) -> Result<Vec<Out>> {
    let (x, w, bias) = (
        uniform(r, b * i, -1.0, 1.0),
        uniform(r, i * o, -1.0, 1.0),
        uniform(r, o, -1.0, 1.0),
    );
    let dout = uniform(r, b * o, -1.0, 1.0);
    let (dx0, dw0, db0) = (
        uniform(r, b * i, -1.0, 1.0),
        uniform(r, i * o, -1.0, 1.0),
        uniform(r, o, -1.0, 1.0),
    );
    let mut out = vec![0.0; b * o];
    dense_forward(&mut out, &x, &w, &bias, b, i, o);
    let (mut dx, mut dw, mut db) = (dx0.clone(), dw0.clone(), db0.clone());
    dense_backward(&mut dx, &mut dw, &mut db, &dout, &x, &w, b, i, o);

    let (xd, wd, bd, doutd) = (up(gpu, &x)?, up(gpu, &w)?, up(gpu, &bias)?, up(gpu, &dout)?);
    let mut outd = gpu.zeros(b * o)?;
    gpu.dense_forward(&mut outd, &xd, &wd, &bd, b, i, o)?;
    let (mut dxd, mut dwd, mut dbd) = (up(gpu, &dx0)?, up(gpu, &dw0)?, up(gpu, &db0)?);
    gpu.dense_backward(&mut dxd, &mut dwd, &mut dbd, &doutd, &xd, &wd, b, i, o)?;
    Ok(vec![
        Out::windowed("out", down(gpu, &outd)?, &out),
        Out::windowed("dinp (+=)", down(gpu, &dxd)?, &dx),
        Out::windowed("dw (+=)", down(gpu, &dwd)?, &dw),
        Out::windowed("dbias (+=)", down(gpu, &dbd)?, &db),
    ])
}

/// LSTM (gru = false) or GRU over 70 samples: more than a CPU sample chunk (64) and not a
/// multiple of the kernels' samples per block (4).
pub(crate) fn recurrent(gpu: &Gpu, r: &mut Rng, gru: bool, s: usize, h: usize) -> Result<Vec<Out>> {
    let (b, i) = (70, 45);
    let (kind, g, bias_len) = if gru {
        (Recurrent::Gru, 3 * h, 6 * h)
    } else {
        (Recurrent::Lstm, 4 * h, 4 * h)
    };
    let ops = recurrent_ops::<f32>(kind);
    let (forward, backward) = (ops.forward, ops.backward);
    let cache_len = (ops.cache_len)(b, s, h);
    let x = uniform(r, b * s * i, -1.0, 1.0);
    let (w_ih, w_hh) = (uniform(r, i * g, -0.3, 0.3), uniform(r, h * g, -0.3, 0.3));
    let bias = uniform(r, bias_len, -0.5, 0.5);
    let dh = uniform(r, b * h, -1.0, 1.0);
    let init = [x.len(), i * g, h * g, bias_len].map(|n| uniform(r, n, -1.0, 1.0));
    let (mut h_out, mut cache) = (vec![0.0; b * h], vec![0.0; cache_len]);
    forward(&mut h_out, &mut cache, &x, &w_ih, &w_hh, &bias, b, s, i, h);
    let [mut dx, mut dwi, mut dwh, mut db] = init.clone();
    backward(
        &mut dx, &mut dwi, &mut dwh, &mut db, &dh, &cache, &x, &w_ih, &w_hh, b, s, i, h,
    );

    let (xd, wid, whd, bd, dhd) = (
        up(gpu, &x)?,
        up(gpu, &w_ih)?,
        up(gpu, &w_hh)?,
        up(gpu, &bias)?,
        up(gpu, &dh)?,
    );
    let (mut hd, mut cd) = (gpu.zeros(b * h)?, gpu.zeros(cache_len)?);
    let [mut dxd, mut dwid, mut dwhd, mut dbd] = [
        up(gpu, &init[0])?,
        up(gpu, &init[1])?,
        up(gpu, &init[2])?,
        up(gpu, &init[3])?,
    ];
    let dxs = Some(&mut *dxd);
    if gru {
        gpu.gru_forward(&mut hd, &mut cd, &xd, &wid, &whd, &bd, b, s, i, h)?;
        gpu.gru_backward(
            dxs, &mut dwid, &mut dwhd, &mut dbd, &dhd, &cd, &xd, &wid, &whd, b, s, i, h,
        )?;
    } else {
        gpu.lstm_forward(&mut hd, &mut cd, &xd, &wid, &whd, &bd, b, s, i, h)?;
        gpu.lstm_backward(
            dxs, &mut dwid, &mut dwhd, &mut dbd, &dhd, &cd, &xd, &wid, &whd, b, s, i, h,
        )?;
    }
    Ok(vec![
        Out::windowed("h_out", down(gpu, &hd)?, &h_out),
        Out::windowed("cache", down(gpu, &cd)?, &cache),
        Out::windowed("dx (+=)", down(gpu, &dxd)?, &dx),
        Out::windowed("dw_ih (+=)", down(gpu, &dwid)?, &dwi),
        Out::windowed("dw_hh (+=)", down(gpu, &dwhd)?, &dwh),
        Out::windowed("dbias (+=)", down(gpu, &dbd)?, &db),
    ])
}

/// `act` forward and backward (+=). ReLU is exact; tanh within [`ELEMENT`]: the GPU's `tanhf` is
/// within 2 ulp of the CPU's (CUDA's documented bound), about 2.4e-7 for |y| ≤ 1.
pub(crate) fn activation(gpu: &Gpu, r: &mut Rng, act: Activation) -> Result<Vec<Out>> {
    let (x, dout, dx0) = (
        uniform(r, N, -1.0, 1.0),
        uniform(r, N, -1.0, 1.0),
        uniform(r, N, -1.0, 1.0),
    );
    let mut out = vec![0.0; N];
    activation_forward(act, &mut out, &x, N);
    let mut dx = dx0.clone();
    activation_backward(act, &mut dx, &dout, &x, &out, N);
    let (xd, doutd) = (up(gpu, &x)?, up(gpu, &dout)?);
    let (mut outd, mut dxd) = (gpu.zeros(N)?, up(gpu, &dx0)?);
    gpu.activation_forward(act, &mut outd, &xd, N)?;
    gpu.activation_backward(act, &mut dxd, &doutd, &xd, &outd, N)?;
    let tol = match act {
        Activation::Relu => EXACT,
        _ => ELEMENT,
    };
    Ok(vec![
        Out::new("out", down(gpu, &outd)?, &out, tol),
        Out::new("dinp (+=)", down(gpu, &dxd)?, &dx, tol),
    ])
}

/// Three inputs of widths 5, 1, 12 placed side by side, and the gradient split back (+=).
pub(crate) fn concat(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let (rows, widths) = (37, [5, 1, 12]);
    let total: usize = widths.iter().sum();
    let dout = uniform(r, rows * total, -1.0, 1.0);
    let (mut out, mut outd) = (vec![0.0; rows * total], gpu.zeros(rows * total)?);
    let (douts, mut outs, mut col) = (up(gpu, &dout)?, Vec::new(), 0);
    for (k, &w) in widths.iter().enumerate() {
        let (x, dx0) = (
            uniform(r, rows * w, -1.0, 1.0),
            uniform(r, rows * w, -1.0, 1.0),
        );
        concat_forward(&mut out, &x, rows, w, total, col);
        gpu.concat_forward(&mut outd, &*up(gpu, &x)?, rows, w, total, col)?;
        let mut dx = dx0.clone();
        concat_backward(&mut dx, &dout, rows, w, total, col);
        let mut dxd = up(gpu, &dx0)?;
        gpu.concat_backward(&mut dxd, &douts, rows, w, total, col)?;
        outs.push(Out::new(
            &format!("dinp {k} (+=)"),
            down(gpu, &dxd)?,
            &dx,
            ELEMENT,
        ));
        col += w;
    }
    outs.push(Out::new("out", down(gpu, &outd)?, &out, EXACT));
    Ok(outs)
}

pub(crate) fn dropout(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let (p, seed) = (0.3, 0x5EED_u64 << 40);
    let (x, dout, dx0) = (
        uniform(r, N, -1.0, 1.0),
        uniform(r, N, -1.0, 1.0),
        uniform(r, N, -1.0, 1.0),
    );
    let (mut out, mut mask) = (vec![0.0; N], vec![0.0; N]);
    dropout_forward(&mut out, &mut mask, &x, N, p, seed);
    let mut dx = dx0.clone();
    dropout_backward(&mut dx, &dout, &mask, N);
    let (xd, doutd) = (up(gpu, &x)?, up(gpu, &dout)?);
    let (mut outd, mut maskd, mut dxd) = (gpu.zeros(N)?, gpu.zeros(N)?, up(gpu, &dx0)?);
    gpu.dropout_forward(&mut outd, &mut maskd, &xd, N, p, seed)?;
    gpu.dropout_backward(&mut dxd, &doutd, &maskd, N)?;
    Ok(vec![
        Out::new("mask", down(gpu, &maskd)?, &mask, EXACT),
        Out::new("out", down(gpu, &outd)?, &out, EXACT),
        Out::new("dinp (+=)", down(gpu, &dxd)?, &dx, ELEMENT),
    ])
}
