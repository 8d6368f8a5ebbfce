//! The kernels' per-thread maths (`kernels/*.cuh`), compiled for the host by build.rs from
//! `kernels/host_shim.cpp`: the exact functions the GPU runs, callable on any machine, so tests
//! can check them against the CPU reference and closed forms without a GPU.

use std::os::raw::{c_float, c_int};

pub use crate::ops::kernel_consts::{
    MAX_WINDOW, OP_CORR, OP_COV, OP_DECAYLINEAR, OP_MEAN, OP_RETURN, OP_STDDEV, OP_ZSCORE,
    PICTURE_DAYS, PICTURE_FEATURES,
};

extern "C" {
    fn khm_splitmix64(x: u64) -> u64;
    fn khm_dropout_uniform(seed: u64, k: u64) -> f64;
    fn khm_dropout_mask(seed: u64, k: u64, p: f64) -> c_float;
    fn khm_adam_element(
        p: *mut f32,
        m: *mut f32,
        v: *mut f32,
        g: f32,
        lr_t: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    );
    fn khm_lstm_cell_forward(z: *const f32, c_prev: f32, out: *mut f32);
    fn khm_lstm_cell_backward(
        gates: *const f32,
        tc: f32,
        c_prev: f32,
        dh: f32,
        dc: f32,
        dz: *mut f32,
    ) -> f32;
    fn khm_gru_cell_forward(xp: *const f32, rp: *const f32, h_prev: f32, out: *mut f32);
    fn khm_gru_cell_backward(
        z: f32,
        r: f32,
        hh: f32,
        rh: f32,
        h_prev: f32,
        dh: f32,
        d: *mut f32,
    ) -> f32;
    fn khm_cholesky_solve(a: *mut f32, b: *mut f32, n: c_int);
    fn khm_ts_pair(
        op: c_int,
        x: *const f32,
        y: *const f32,
        d: c_int,
        gx: *mut f32,
        gy: *mut f32,
    ) -> f32;
    fn khm_ts_single(op: c_int, x: *const f32, d: c_int, gx: *mut f32) -> f32;
    fn khm_ts_channels(ops: c_int, n_features: c_int, n_pairs: c_int) -> c_int;
}

// SAFETY (all wrappers below): the shim functions are pure, read and write only the buffers
// passed, whose lengths are asserted here.

pub fn splitmix64(x: u64) -> u64 {
    unsafe { khm_splitmix64(x) }
}

/// The uniform in [0, 1) that decides whether element k is dropped.
pub fn dropout_uniform(seed: u64, k: u64) -> f64 {
    unsafe { khm_dropout_uniform(seed, k) }
}

/// Inverted-dropout mask of element k: 1/(1−p) if kept, else 0.
pub fn dropout_mask(seed: u64, k: u64, p: f64) -> f32 {
    unsafe { khm_dropout_mask(seed, k, p) }
}

/// One Adam element update in place; returns nothing, mutates (p, m, v).
#[allow(clippy::too_many_arguments)]
pub fn adam_element(
    p: &mut f32,
    m: &mut f32,
    v: &mut f32,
    g: f32,
    lr_t: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
) {
    unsafe { khm_adam_element(p, m, v, g, lr_t, beta1, beta2, eps) }
}

/// LSTM cell from pre-activations z = [i, f, c, o] → [i, f, c̃, o, c_t, tanh c_t, h_t], the
/// CPU cache layout of one unit.
pub fn lstm_cell_forward(z: [f32; 4], c_prev: f32) -> [f32; 7] {
    let mut out = [0.0; 7];
    unsafe { khm_lstm_cell_forward(z.as_ptr(), c_prev, out.as_mut_ptr()) };
    out
}

/// LSTM cell backward from the cached gates and tanh c_t: (dz [i, f, c, o], ∂L/∂c_{t−1}).
pub fn lstm_cell_backward(
    gates: [f32; 4],
    tc: f32,
    c_prev: f32,
    dh: f32,
    dc: f32,
) -> ([f32; 4], f32) {
    let mut dz = [0.0; 4];
    let dc_prev =
        unsafe { khm_lstm_cell_backward(gates.as_ptr(), tc, c_prev, dh, dc, dz.as_mut_ptr()) };
    (dz, dc_prev)
}

/// GRU cell (reset_after) from input-side and recurrent-side pre-activations [z, r, h]
/// → [z, r, ĥ, h'].
pub fn gru_cell_forward(xp: [f32; 3], rp: [f32; 3], h_prev: f32) -> [f32; 4] {
    let mut out = [0.0; 4];
    unsafe { khm_gru_cell_forward(xp.as_ptr(), rp.as_ptr(), h_prev, out.as_mut_ptr()) };
    out
}

/// GRU cell backward: ([dxz, dxr, dxh, drh], direct part of ∂L/∂h_prev).
pub fn gru_cell_backward(
    z: f32,
    r: f32,
    hh: f32,
    rh: f32,
    h_prev: f32,
    dh: f32,
) -> ([f32; 4], f32) {
    let mut d = [0.0; 4];
    let dh_prev = unsafe { khm_gru_cell_backward(z, r, hh, rh, h_prev, dh, d.as_mut_ptr()) };
    (d, dh_prev)
}

/// Solves a·x = b (a row-major n×n, symmetric positive definite) with the kernels' Cholesky.
pub fn cholesky_solve(a: &[f32], b: &[f32]) -> Vec<f32> {
    let n = b.len();
    assert_eq!(a.len(), n * n);
    let (mut a, mut x) = (a.to_vec(), b.to_vec());
    unsafe { khm_cholesky_solve(a.as_mut_ptr(), x.as_mut_ptr(), n as c_int) };
    x
}

/// A pair op (OP_CORR or OP_COV) on windows x, y: (value, ∂/∂x, ∂/∂y).
pub fn ts_pair(op: u32, x: &[f32], y: &[f32]) -> (f32, Vec<f32>, Vec<f32>) {
    let d = x.len();
    assert!(y.len() == d && (2..=MAX_WINDOW).contains(&d));
    let (mut gx, mut gy) = (vec![0.0; d], vec![0.0; d]);
    let v = unsafe {
        khm_ts_pair(
            op as c_int,
            x.as_ptr(),
            y.as_ptr(),
            d as c_int,
            gx.as_mut_ptr(),
            gy.as_mut_ptr(),
        )
    };
    (v, gx, gy)
}

/// A single-series op on window x: (value, ∂/∂x).
pub fn ts_single(op: u32, x: &[f32]) -> (f32, Vec<f32>) {
    let d = x.len();
    assert!((1..=MAX_WINDOW).contains(&d));
    let mut gx = vec![0.0; d];
    let v = unsafe { khm_ts_single(op as c_int, x.as_ptr(), d as c_int, gx.as_mut_ptr()) };
    (v, gx)
}

/// Output channels of the feature layer for an op mask.
pub fn ts_channels(ops: u32, n_features: usize, n_pairs: usize) -> usize {
    unsafe { khm_ts_channels(ops as c_int, n_features as c_int, n_pairs as c_int) as usize }
}
