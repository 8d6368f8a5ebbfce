//! The losses (MSE plain and weighted, the neutralized MSE) and the Adam update.

use crate::common::gpu::{Out, ELEMENT, EXACT};
use crate::common::uniform;
use crate::{down, up, N};
use alphanet::autograd::adam::adam_update;
use alphanet::cuda::Gpu;
use alphanet::ops::loss::{long_side_weights, mse_loss, neutralized_mse_loss};
use alphanet::util::rng::Rng;
use alphanet::Result;

pub(crate) fn mse(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let n = 700;
    let (pred, y, dpred0) = (
        uniform(r, n, -1.0, 1.0),
        uniform(r, n, -1.0, 1.0),
        uniform(r, n, -1.0, 1.0),
    );
    let w = long_side_weights(&y, 2.0);
    let (pd, yd, wd) = (up(gpu, &pred)?, up(gpu, &y)?, up(gpu, &w)?);
    let mut outs = Vec::new();
    for (name, weights) in [("plain", None), ("weighted", Some(&w[..]))] {
        let mut dpred = dpred0.clone();
        let loss = mse_loss(&mut dpred, &pred, &y, weights, n);
        let mut dpredd = up(gpu, &dpred0)?;
        let lossd = gpu.mse_loss(&mut dpredd, &pd, &yd, weights.map(|_| &*wd), n)?;
        outs.push(Out::windowed(&format!("{name} loss"), vec![lossd], &[loss]));
        outs.push(Out::new(
            &format!("{name} dpred (=)"),
            down(gpu, &dpredd)?,
            &dpred,
            ELEMENT,
        ));
    }
    Ok(outs)
}

pub(crate) fn neutralized(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    // Three dates; the 3-row one is below 2(K+1) rows and falls back to plain MSE.
    let (k, offsets) = (3, [0usize, 300, 303, 560]);
    let n = offsets[3];
    let (pred, y, dpred0) = (
        uniform(r, n, -1.0, 1.0),
        uniform(r, n, -1.0, 1.0),
        uniform(r, n, -1.0, 1.0),
    );
    let mut styles = uniform(r, n * k, -2.0, 2.0);
    styles[7] = f32::NAN;
    styles[400] = f32::INFINITY;
    let w = long_side_weights(&y, 2.0);
    let mut dpred = dpred0.clone();
    let loss = neutralized_mse_loss(&mut dpred, &pred, &y, Some(&w), &styles, &offsets, n, k);

    let offsets32: Vec<i32> = offsets.iter().map(|&o| o as i32).collect();
    let mut dpredd = up(gpu, &dpred0)?;
    let lossd = gpu.neutralized_mse_loss(
        &mut dpredd,
        &*up(gpu, &pred)?,
        &*up(gpu, &y)?,
        Some(&*up(gpu, &w)?),
        &*up(gpu, &styles)?,
        &*gpu.upload(&offsets32)?,
        n,
        k,
    )?;
    Ok(vec![
        Out::windowed("loss", vec![lossd.loss], &[loss.loss]),
        Out::new(
            "fallback groups",
            vec![lossd.fallback_groups as f32],
            &[loss.fallback_groups as f32],
            EXACT,
        ),
        // dpred = 2w(ŷ_res − y)/N ~ 4e-3 (N = 560): its windowed atol is 1e-4 of that, where
        // an absolute 1e-4 let a gradient without its style projection (~10% of it) pass.
        Out::windowed("dpred (=)", down(gpu, &dpredd)?, &dpred),
    ])
}

pub(crate) fn adam(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let (lr_t, b1, b2, eps) = (3e-4f32, 0.9f32, 0.999f32, 1e-7f32);
    let (p0, m0, v0) = (
        uniform(r, N, -1.0, 1.0),
        uniform(r, N, -0.1, 0.1),
        uniform(r, N, 0.0, 0.01),
    );
    let grad = uniform(r, N, -1.0, 1.0);
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    adam_update(&mut p, &mut m, &mut v, &grad, N, lr_t, b1, b2, eps);
    let (mut pd, mut md, mut vd) = (up(gpu, &p0)?, up(gpu, &m0)?, up(gpu, &v0)?);
    gpu.adam_update(
        &mut pd,
        &mut md,
        &mut vd,
        &*up(gpu, &grad)?,
        N,
        lr_t,
        b1,
        b2,
        eps,
    )?;
    Ok(vec![
        Out::new("params", down(gpu, &pd)?, &p, ELEMENT),
        Out::new("m", down(gpu, &md)?, &m, ELEMENT),
        Out::new("v", down(gpu, &vd)?, &v, ELEMENT),
    ])
}
