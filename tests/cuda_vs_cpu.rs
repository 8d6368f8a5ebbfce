//! CPU vs CUDA (docs/testing.md): every kernel's launch wrapper, forward and backward, against its CPU
//! reference op on the same random inputs; three training steps of v2 models with the library's
//! `GpuTrainer` against the CPU tape's `train_step`, and its predictions against `Model::predict`;
//! and determinism (two GPU runs bit-identical).
//!
//! Without a usable GPU every test prints why and passes, unless ALPHANET_REQUIRE_GPU=1
//! (scripts/gpu_check.sh), where a missing GPU is a failure.

use alphanet::autograd::adam::{adam_update, AdamConfig};
use alphanet::autograd::tape::Recurrent;
use alphanet::cuda::{CudaSlice, Gpu, GpuTrainer};
use alphanet::data::panel::PanelView;
use alphanet::data::samples::{gather_pictures, PICTURE_LEN};
use alphanet::model::{LossConfig, Model, ModelConfig};
use alphanet::ops::batchnorm::*;
use alphanet::ops::dense::{dense_backward, dense_forward};
use alphanet::ops::elementwise::*;
use alphanet::ops::loss::{long_side_weights, mse_loss, neutralized_mse_loss};
use alphanet::ops::pooling::{pool_backward, pool_forward, pooled_steps};
use alphanet::ops::ts_features::*;
use alphanet::rng::{stream, Rng};
use alphanet::train::step::{train_step, Batch};
use alphanet::Result;
use rand::Rng as _;

type Buf = CudaSlice<f32>;

/// The GPU when the driver sees one, else the CPU stand-in of the CUDA driver
/// (`alphanet::cuda::open_for_tests`), so that every case runs on every machine; never None.
/// ALPHANET_REQUIRE_GPU=1 (scripts/gpu_check.sh) demands a real GPU: without one this fails.
fn gpu(test: &str) -> Option<Gpu> {
    let gpu = alphanet::cuda::open_for_tests().unwrap_or_else(|e| panic!("{test}: {e}"));
    eprintln!("{test}: {} (kernels from {})", gpu.info, gpu.kernels_from);
    Some(gpu)
}

#[derive(Clone, Copy)]
struct Tol {
    atol: f32,
    rtol: f32,
}

/// Windowed ops and every reduction (sums in a different order on each side): docs/testing.md.
const WINDOWED: Tol = Tol {
    atol: 1e-4,
    rtol: 1e-3,
};
/// Element-wise arithmetic: nvcc fuses a·b + c into one rounding where the CPU rounds twice,
/// a difference of up to half an ulp of an O(1) product, even when the result itself is ~0.
const ELEMENT: Tol = Tol {
    atol: 1e-6,
    rtol: 1e-6,
};
/// Copies, comparisons and the dropout hash: the same bits.
const EXACT: Tol = Tol {
    atol: 0.0,
    rtol: 0.0,
};

/// One output of one op, from both sides.
struct Out {
    what: String,
    gpu: Vec<f32>,
    cpu: Vec<f32>,
    tol: Tol,
}

impl Out {
    fn new(what: &str, gpu: Vec<f32>, cpu: &[f32], tol: Tol) -> Out {
        Out {
            what: what.to_string(),
            gpu,
            cpu: cpu.to_vec(),
            tol,
        }
    }

    /// None when every element is within tolerance, else the worst element.
    fn mismatch(&self) -> Option<String> {
        if self.gpu.len() != self.cpu.len() {
            return Some(format!(
                "{} GPU vs {} CPU values",
                self.gpu.len(),
                self.cpu.len()
            ));
        }
        let excess =
            |(a, r): (&f32, &f32)| (a - r).abs() - (self.tol.atol + self.tol.rtol * r.abs());
        let (k, worst) = self
            .gpu
            .iter()
            .zip(&self.cpu)
            .map(|p| {
                if p.0 == p.1 {
                    f32::NEG_INFINITY
                } else {
                    excess(p)
                }
            })
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (worst > 0.0 || worst.is_nan())
            .then(|| format!("[{k}]: GPU {} vs CPU {}", self.gpu[k], self.cpu[k]))
    }
}

fn uniform(r: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| r.gen_range(lo..hi)).collect()
}

/// Host → device, device → host.
fn up(gpu: &Gpu, x: &[f32]) -> Result<Buf> {
    gpu.upload(x)
}

fn down(gpu: &Gpu, x: &Buf) -> Result<Vec<f32>> {
    gpu.download(x)
}

type Case = fn(&Gpu, &mut Rng) -> Result<Vec<Out>>;

/// Every kernel, by the CPU op it mirrors.
const CASES: &[(&str, Case)] = &[
    (
        "ts_features v2: 15 features, all pairs, stride 10",
        |g, r| features(g, r, 10, 10, OpSet::ALL, all_pairs(15)),
    ),
    ("ts_features v3 branch: stride 5", |g, r| {
        features(g, r, 10, 5, OpSet::ALL, all_pairs(15))
    }),
    (
        "ts_features v2.1 pairs, peer op set, window 7 stride 3",
        |g, r| {
            features(
                g,
                r,
                7,
                3,
                OpSet::PEER6,
                pairs_among(&[0, 1, 4, 6, 9, 10, 13, 14]),
            )
        },
    ),
    ("pool v1: 3 steps, window 3, stride 3", |g, r| {
        pool(g, r, 3, 285, 3, 3)
    }),
    ("pool overlapping: 7 steps, window 3, stride 2", |g, r| {
        pool(g, r, 7, 20, 3, 2)
    }),
    ("batchnorm features: 111 rows × 285", |g, r| {
        batchnorm(g, r, 111, 285)
    }),
    ("batchnorm hidden: 600 rows × 30", |g, r| {
        batchnorm(g, r, 600, 30)
    }),
    ("dense v2 output: 37 × 30 → 1", |g, r| {
        dense(g, r, 37, 30, 1)
    }),
    ("dense 70 × 50 → 20", |g, r| dense(g, r, 70, 50, 20)),
    ("lstm: 70 samples, 3 steps, 45 → 30", |g, r| {
        recurrent(g, r, false, 3)
    }),
    ("gru: 70 samples, 5 steps, 45 → 30", |g, r| {
        recurrent(g, r, true, 5)
    }),
    ("relu", relu),
    ("dropout p = 0.3", dropout),
    ("adam", adam),
    ("gather_pictures", gather),
    ("mse_loss plain and weighted", mse),
    ("neutralized_mse_loss", neutralized),
];

fn features(
    gpu: &Gpu,
    r: &mut Rng,
    window: usize,
    stride: usize,
    ops: OpSet,
    pairs: Vec<(u16, u16)>,
) -> Result<Vec<Out>> {
    let spec = FeatureSpec {
        n_features: 15,
        days: 30,
        window,
        stride,
        ops,
        pairs,
    };
    let (b, fd) = (37, spec.n_features * spec.days);
    let sc = spec.steps() * spec.channels();
    let mut x = uniform(r, b * fd, 0.5, 2.0);
    // Two volume-like features: a corr of theirs divides by √Sxx·√Syy, whose Sxx·Syy overflows.
    for sample in x.chunks_exact_mut(fd) {
        sample[..2 * spec.days].iter_mut().for_each(|v| *v *= 1e10);
    }
    let (dout, dx0) = (uniform(r, b * sc, -1.0, 1.0), uniform(r, b * fd, -1.0, 1.0));
    let mut out = vec![0.0; b * sc];
    ts_features_forward(&mut out, &x, b, &spec);
    let mut dx = dx0.clone();
    ts_features_backward(&mut dx, &dout, &x, b, &spec);

    let dspec = gpu.feature_spec(&spec)?;
    let (xd, doutd) = (up(gpu, &x)?, up(gpu, &dout)?);
    let (mut outd, mut dxd) = (gpu.zeros(b * sc)?, up(gpu, &dx0)?);
    gpu.ts_features_forward(&mut outd, &xd, b, &dspec)?;
    gpu.ts_features_backward(&mut dxd, &doutd, &xd, b, &dspec)?;
    Ok(vec![
        Out::new("out", down(gpu, &outd)?, &out, WINDOWED),
        Out::new("dinp (+=)", down(gpu, &dxd)?, &dx, WINDOWED),
    ])
}

fn pool(
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
        Out::new("out", down(gpu, &outd)?, &out, WINDOWED),
        Out::new("dinp (+=)", down(gpu, &dxd)?, &dx, WINDOWED),
    ])
}

fn batchnorm(gpu: &Gpu, r: &mut Rng, rows: usize, c: usize) -> Result<Vec<Out>> {
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
    Ok(vec![
        Out::new("out", down(gpu, &outd)?, &out, WINDOWED),
        Out::new("mean", down(gpu, &meand)?, &mean, WINDOWED),
        Out::new("var", down(gpu, &vard)?, &var, WINDOWED),
        Out::new("inference out", down(gpu, &infd)?, &inf, ELEMENT),
        Out::new("dinp (+=)", down(gpu, &dxd)?, &dx, WINDOWED),
        Out::new("dgamma (+=)", down(gpu, &dgd)?, &dg, WINDOWED),
        Out::new("dbeta (+=)", down(gpu, &dbd)?, &db, WINDOWED),
        Out::new("moving mean", down(gpu, &mmd)?, &mm, ELEMENT),
        Out::new("moving var", down(gpu, &mvd)?, &mv, ELEMENT),
    ])
}

fn dense(gpu: &Gpu, r: &mut Rng, b: usize, i: usize, o: usize) -> Result<Vec<Out>> {
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
        Out::new("out", down(gpu, &outd)?, &out, WINDOWED),
        Out::new("dinp (+=)", down(gpu, &dxd)?, &dx, WINDOWED),
        Out::new("dw (+=)", down(gpu, &dwd)?, &dw, WINDOWED),
        Out::new("dbias (+=)", down(gpu, &dbd)?, &db, WINDOWED),
    ])
}

/// LSTM (gru = false) or GRU over 70 samples: more than a CPU sample chunk (64) and not a
/// multiple of the kernels' samples per block (4).
fn recurrent(gpu: &Gpu, r: &mut Rng, gru: bool, s: usize) -> Result<Vec<Out>> {
    let (b, i, h) = (70, 45, 30);
    let (kind, g, bias_len) = if gru {
        (Recurrent::Gru, 3 * h, 6 * h)
    } else {
        (Recurrent::Lstm, 4 * h, 4 * h)
    };
    let (cache_len, forward, backward) = kind.ops::<f32>();
    let cache_len = cache_len(b, s, h);
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
    if gru {
        gpu.gru_forward(&mut hd, &mut cd, &xd, &wid, &whd, &bd, b, s, i, h)?;
        gpu.gru_backward(
            &mut dxd, &mut dwid, &mut dwhd, &mut dbd, &dhd, &cd, &xd, &wid, &whd, b, s, i, h,
        )?;
    } else {
        gpu.lstm_forward(&mut hd, &mut cd, &xd, &wid, &whd, &bd, b, s, i, h)?;
        gpu.lstm_backward(
            &mut dxd, &mut dwid, &mut dwhd, &mut dbd, &dhd, &cd, &xd, &wid, &whd, b, s, i, h,
        )?;
    }
    Ok(vec![
        Out::new("h_out", down(gpu, &hd)?, &h_out, WINDOWED),
        Out::new("cache", down(gpu, &cd)?, &cache, WINDOWED),
        Out::new("dx (+=)", down(gpu, &dxd)?, &dx, WINDOWED),
        Out::new("dw_ih (+=)", down(gpu, &dwid)?, &dwi, WINDOWED),
        Out::new("dw_hh (+=)", down(gpu, &dwhd)?, &dwh, WINDOWED),
        Out::new("dbias (+=)", down(gpu, &dbd)?, &db, WINDOWED),
    ])
}

const N: usize = 3001;

fn relu(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let (x, dout, dx0) = (
        uniform(r, N, -1.0, 1.0),
        uniform(r, N, -1.0, 1.0),
        uniform(r, N, -1.0, 1.0),
    );
    let mut out = vec![0.0; N];
    relu_forward(&mut out, &x, N);
    let mut dx = dx0.clone();
    relu_backward(&mut dx, &dout, &x, N);
    let (xd, doutd) = (up(gpu, &x)?, up(gpu, &dout)?);
    let (mut outd, mut dxd) = (gpu.zeros(N)?, up(gpu, &dx0)?);
    gpu.relu_forward(&mut outd, &xd, N)?;
    gpu.relu_backward(&mut dxd, &doutd, &xd, N)?;
    Ok(vec![
        Out::new("out", down(gpu, &outd)?, &out, EXACT),
        Out::new("dinp (+=)", down(gpu, &dxd)?, &dx, EXACT),
    ])
}

fn dropout(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
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

fn adam(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
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
        &up(gpu, &grad)?,
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

fn gather(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let (n_dates, n_stocks, b) = (45, 17, 60);
    let features = uniform(r, n_dates * n_stocks * 15, -1.0, 1.0);
    let samples: Vec<(u32, u32)> = (0..b)
        .map(|_| {
            (
                r.gen_range(29..n_dates as u32),
                r.gen_range(0..n_stocks as u32),
            )
        })
        .collect();
    let view = PanelView {
        n_dates,
        n_stocks,
        n_styles: 0,
        n_price_fields: 0,
        vwap_field: 0,
        dates: &[],
        features: &features,
        price: &[],
        tradable: &[],
        styles: &[],
        industry: &[],
        size: &[],
    };
    let mut out = vec![0.0; b * PICTURE_LEN];
    gather_pictures(view, &samples, &mut out);
    let flat: Vec<u32> = samples.iter().flat_map(|&(t, i)| [t, i]).collect();
    let mut outd = gpu.zeros(b * PICTURE_LEN)?;
    gpu.gather_pictures(
        &up(gpu, &features)?,
        n_stocks,
        &gpu.upload(&flat)?,
        &mut outd,
    )?;
    Ok(vec![Out::new("pictures", down(gpu, &outd)?, &out, EXACT)])
}

fn mse(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
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
        let lossd = gpu.mse_loss(&mut dpredd, &pd, &yd, weights.map(|_| &wd), n)?;
        outs.push(Out::new(
            &format!("{name} loss"),
            vec![lossd],
            &[loss],
            WINDOWED,
        ));
        outs.push(Out::new(
            &format!("{name} dpred (=)"),
            down(gpu, &dpredd)?,
            &dpred,
            ELEMENT,
        ));
    }
    Ok(outs)
}

fn neutralized(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
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
        &up(gpu, &pred)?,
        &up(gpu, &y)?,
        Some(&up(gpu, &w)?),
        &up(gpu, &styles)?,
        &gpu.upload(&offsets32)?,
        n,
        k,
    )?;
    Ok(vec![
        Out::new("loss", vec![lossd.loss], &[loss.loss], WINDOWED),
        Out::new(
            "fallback groups",
            vec![lossd.fallback_groups as f32],
            &[loss.fallback_groups as f32],
            EXACT,
        ),
        Out::new("dpred (=)", down(gpu, &dpredd)?, &dpred, WINDOWED),
    ])
}

/// Runs every case with its own random stream; returns the GPU outputs of each, and the lines
/// of every mismatch.
fn run_cases(gpu: &Gpu) -> (Vec<Vec<Vec<f32>>>, Vec<String>) {
    let (mut outputs, mut failures) = (Vec::new(), Vec::new());
    for (name, case) in CASES {
        let outs = case(gpu, &mut stream(17, name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        for o in &outs {
            let verdict = o.mismatch();
            eprintln!(
                "{:<56} {:<18} {:>7} values  {}",
                name,
                o.what,
                o.cpu.len(),
                verdict.as_deref().unwrap_or("ok")
            );
            if let Some(v) = verdict {
                failures.push(format!("{name} {}: {v}", o.what));
            }
        }
        outputs.push(outs.into_iter().map(|o| o.gpu).collect());
    }
    (outputs, failures)
}

#[test]
fn every_kernel_matches_its_cpu_op() {
    let Some(gpu) = gpu("every_kernel_matches_its_cpu_op") else {
        return;
    };
    let (_, failures) = run_cases(&gpu);
    assert!(failures.is_empty(), "GPU ≠ CPU:\n{}", failures.join("\n"));
}

// ---- a v2 model trained on the GPU (GpuTrainer) against the CPU tape ---------------------------

const BATCH: usize = 300;
const STEPS: usize = 3;

/// The configurations trained: v2 (features → BN → LSTM → BN → Dropout → Dense) with dropout
/// on, so that every layer runs, and v2.3 weights; v2.1 + v2.2 + v2.3 (8 drawn features, the
/// loss neutralized within two dates against three styles, weights) without dropout.
const SETUPS: [&str; 2] = ["v2 + dropout + v2.3", "v2.1 + v2.2 + v2.3"];

fn v2_setup(setup: &str) -> (Model<f32>, Batch<f32>, LossConfig, AdamConfig) {
    let combined = setup == SETUPS[1];
    let cfg = ModelConfig {
        dropout: if combined { 0.0 } else { 0.1 },
        pair_sample: combined.then_some(8),
        seed: 5,
        ..ModelConfig::default()
    };
    let model = Model::<f32>::new(&cfg).unwrap();
    let mut r = stream(5, "cuda_vs_cpu batch");
    let x = uniform(&mut r, BATCH * cfg.n_features * cfg.days, 0.5, 2.0);
    let y = uniform(&mut r, BATCH, -1.0, 1.0);
    let offsets = vec![0, 170, BATCH];
    let w = offsets
        .windows(2)
        .flat_map(|g| long_side_weights(&y[g[0]..g[1]], 2.0))
        .collect();
    let k = 3;
    let batch = Batch {
        x,
        y,
        w,
        styles: uniform(&mut r, BATCH * k, -2.0, 2.0),
        k,
        offsets,
    };
    let loss = LossConfig {
        neutralize: combined,
        long_weight: Some(2.0),
    };
    (model, batch, loss, AdamConfig::default())
}

/// What one training step leaves behind: the loss (with its L2 term), every parameter's gradient
/// and value after Adam (in store order) and the BN moving statistics.
struct StepOut {
    loss: f32,
    grads: Vec<Vec<f32>>,
    params: Vec<Vec<f32>>,
    moving: Vec<Vec<f32>>,
}

impl StepOut {
    fn of(model: &Model<f32>, loss: f64) -> StepOut {
        let per_param = |v: &[f32]| -> Vec<Vec<f32>> {
            let entries = &model.store.entries;
            entries
                .iter()
                .map(|e| v[e.range.clone()].to_vec())
                .collect()
        };
        StepOut {
            loss: loss as f32,
            grads: per_param(&model.store.grad),
            params: per_param(&model.store.data),
            moving: model
                .bn
                .iter()
                .flat_map(|s| [s.moving_mean.clone(), s.moving_var.clone()])
                .collect(),
        }
    }
}

fn cpu_steps(setup: &str) -> Vec<StepOut> {
    let (mut model, batch, loss, adam) = v2_setup(setup);
    (0..STEPS)
        .map(|step| {
            let (l, _) = train_step(&mut model, &batch, &loss, &adam, step as u64);
            StepOut::of(&model, l)
        })
        .collect()
}

/// The same steps with the library's [`GpuTrainer`], its state brought back after each one.
fn gpu_steps(gpu: &Gpu, setup: &str) -> Result<Vec<StepOut>> {
    let (mut model, batch, loss, adam) = v2_setup(setup);
    let mut trainer = GpuTrainer::new(gpu, &model)?;
    (0..STEPS)
        .map(|step| {
            let (l, _) = trainer.train_step(&batch, &loss, &adam, step as u64)?;
            trainer.download_into(&mut model)?;
            Ok(StepOut::of(&model, l))
        })
        .collect()
}

#[test]
fn v2_training_steps_match_cpu() {
    let Some(gpu) = gpu("v2_training_steps_match_cpu") else {
        return;
    };
    // Adam scales every update to about ±lr whatever the gradient's size, so a gradient that is
    // zero up to rounding may move a parameter by lr either way on each side.
    let lr = AdamConfig::default().lr as f32;
    let params_tol = Tol {
        atol: 2.0 * lr * STEPS as f32,
        rtol: 1e-3,
    };
    let mut failures = Vec::new();
    for setup in SETUPS {
        let names: Vec<String> = v2_setup(setup)
            .0
            .store
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let (cpu, dev) = (cpu_steps(setup), gpu_steps(&gpu, setup).unwrap());
        for (step, (c, d)) in cpu.iter().zip(&dev).enumerate() {
            let mut outs = vec![Out::new("loss", vec![d.loss], &[c.loss], WINDOWED)];
            for (k, name) in names.iter().enumerate() {
                outs.push(Out::new(
                    &format!("grad {name}"),
                    d.grads[k].clone(),
                    &c.grads[k],
                    WINDOWED,
                ));
                outs.push(Out::new(
                    &format!("param {name}"),
                    d.params[k].clone(),
                    &c.params[k],
                    params_tol,
                ));
            }
            for (k, (dm, cm)) in d.moving.iter().zip(&c.moving).enumerate() {
                outs.push(Out::new(
                    &format!("BN moving stat {k}"),
                    dm.clone(),
                    cm,
                    WINDOWED,
                ));
            }
            for o in outs {
                let verdict = o.mismatch();
                eprintln!(
                    "{setup} step {step} {:<40} {}",
                    o.what,
                    verdict.as_deref().unwrap_or("ok")
                );
                if let Some(v) = verdict {
                    failures.push(format!("{setup} step {step} {}: {v}", o.what));
                }
            }
        }
    }
    assert!(failures.is_empty(), "GPU ≠ CPU:\n{}", failures.join("\n"));
}

/// Inference on the GPU against `Model::predict` with the same weights and moving statistics
/// (those the GPU left after training steps, brought back with `download_into`).
#[test]
fn gpu_predict_matches_cpu_on_the_same_weights() {
    let Some(gpu) = gpu("gpu_predict_matches_cpu_on_the_same_weights") else {
        return;
    };
    let mut failures = Vec::new();
    for setup in SETUPS {
        let (mut model, batch, loss, adam) = v2_setup(setup);
        let mut trainer = GpuTrainer::new(&gpu, &model).unwrap();
        for step in 0..STEPS {
            trainer
                .train_step(&batch, &loss, &adam, step as u64)
                .unwrap();
        }
        trainer.download_into(&mut model).unwrap();
        let dev = trainer.predict(&batch.x, BATCH).unwrap();
        let cpu = model.predict(batch.x.clone(), BATCH);
        let verdict = Out::new("predictions", dev, &cpu, WINDOWED).mismatch();
        eprintln!("{setup} predictions {}", verdict.as_deref().unwrap_or("ok"));
        failures.extend(verdict.map(|v| format!("{setup}: {v}")));
    }
    assert!(failures.is_empty(), "GPU ≠ CPU:\n{}", failures.join("\n"));
}

#[test]
fn gpu_reruns_are_bit_identical() {
    let Some(gpu) = gpu("gpu_reruns_are_bit_identical") else {
        return;
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let (first, _) = run_cases(&gpu);
    let (second, _) = run_cases(&gpu);
    for ((name, _), (a, b)) in CASES.iter().zip(first.iter().zip(&second)) {
        for (x, y) in a.iter().zip(b) {
            assert_eq!(bits(x), bits(y), "{name}: two runs differ");
        }
    }
    let setup = SETUPS[0];
    let (a, b) = (
        gpu_steps(&gpu, setup).unwrap(),
        gpu_steps(&gpu, setup).unwrap(),
    );
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            x.loss.to_bits(),
            y.loss.to_bits(),
            "step {step}: loss differs"
        );
        for (p, q) in x
            .grads
            .iter()
            .chain(&x.params)
            .chain(&x.moving)
            .zip(y.grads.iter().chain(&y.params).chain(&y.moving))
        {
            assert_eq!(bits(p), bits(q), "step {step}: training differs");
        }
    }
}
