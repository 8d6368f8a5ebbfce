//! CPU vs CUDA (docs/testing.md): every kernel's launch wrapper, forward and backward, against its CPU
//! reference op on the same random inputs; three training steps of every model (v1, v2, v3) with
//! every loss (plain, weighted, neutralized), the one model code run on the GPU as a `Device`
//! against the same code on the CPU, one step of v2 at the batch size of real training, and the
//! predictions against `Model::predict`; and determinism (two GPU runs bit-identical).
//! scripts/kernel_mutants.sh shows that each fault it injects into kernels/ fails this suite.
//!
//! Every test runs on a real GPU when the driver sees one and on the CPU stand-in for the CUDA
//! driver otherwise (docs/cuda_emulator.md); with ALPHANET_REQUIRE_GPU=1 (scripts/gpu_check.sh)
//! a missing real GPU is a failure.

use alphanet::autograd::adam::{adam_update, AdamConfig};
use alphanet::cuda::{CudaSlice, Gpu, Pooled};
use alphanet::data::panel::PanelView;
use alphanet::data::samples::{gather_pictures, PICTURE_LEN};
use alphanet::device::Device;
use alphanet::model::{Arch, LossConfig, Model, ModelConfig};
use alphanet::ops::batchnorm::*;
use alphanet::ops::dense::{dense_backward, dense_forward};
use alphanet::ops::elementwise::*;
use alphanet::ops::loss::{long_side_weights, mse_loss, neutralized_mse_loss};
use alphanet::ops::pooling::{pool_backward, pool_forward, pooled_steps};
use alphanet::ops::recurrent::Recurrent;
use alphanet::ops::recurrent_ops;
use alphanet::ops::ts_features::*;
use alphanet::train::step::{train_step, train_step_on, Batch};
use alphanet::util::rng::{stream, Rng};
use alphanet::{Float, Result};
use rand::Rng as _;

mod common;
use common::uniform;

type Buf = CudaSlice<f32>;

/// The GPU when the driver sees one, else the CPU stand-in of the CUDA driver
/// (`alphanet::cuda::open_for_tests`), so that every case runs on every machine.
/// ALPHANET_REQUIRE_GPU=1 (scripts/gpu_check.sh) demands a real GPU: without one this fails.
fn gpu(test: &str) -> Gpu {
    let gpu = alphanet::cuda::open_for_tests().unwrap_or_else(|e| panic!("{test}: {e}"));
    eprintln!("{test}: {} (kernels from {})", gpu.info, gpu.kernels_from);
    gpu
}

// How strict each comparison is, and why it cannot pass a wrong kernel:
// - the inputs are well conditioned: each output and gradient is a short sum of terms of its
//   own size, so f32 gets it right to ~1e-6 relative on either side, far inside the tolerance,
//   and one wrong term (a flipped sign, a missing factor) is far outside it.
//   `feature_cases_are_well_conditioned` proves this for the feature cases against f64;
// - tolerances scale with the values compared: docs/testing.md's atol 1e-4 is taken relative to the root
//   mean square of each channel, feature or tensor, so that gradients of a volume-scale feature
//   (~1e-10) or of a loss (~1/N) are checked as tightly as O(1) values;
// - an empty comparison fails;
// - scripts/kernel_mutants.sh injects faults into kernels/ one at a time and shows that each
//   fails this suite.

/// The largest |GPU − CPU| allowed of an element is `atol + rtol·|CPU|`.
#[derive(Clone, Copy)]
struct Tol {
    atol: f32,
    rtol: f32,
}

/// docs/testing.md's tolerance of windowed ops and every reduction (sums in a different order on
/// each side): atol 1e-4 (relative to the values' root mean square, see [`windowed_by`]), rtol 1e-3.
const WINDOWED_ATOL: f32 = 1e-4;
const WINDOWED_RTOL: f32 = 1e-3;
/// Element-wise arithmetic: nvcc fuses a·b + c into one rounding where the CPU rounds twice,
/// a difference of up to half an ulp of an O(1) product, even when the result itself is ~0.
const ELEMENT: Tol = Tol {
    atol: 1e-6,
    rtol: 1e-6,
};
/// Copies, comparisons, the dropout hash and degenerate windows: the same bits.
const EXACT: Tol = Tol {
    atol: 0.0,
    rtol: 0.0,
};

fn rms(v: &[f32]) -> f32 {
    let sum: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
    (sum / v.len().max(1) as f64).sqrt() as f32
}

/// The windowed bound of each element of `cpu`, whose element k belongs to group `group(k)` of
/// `n` (a channel, a feature): atol = 1e-4·rms(group) + 1e-3·|value|. For O(1) values that is
/// docs/testing.md's atol 1e-4; for a group of small values an absolute 1e-4 would check nothing.
fn windowed_by(cpu: &[f32], n: usize, group: impl Fn(usize) -> usize) -> Vec<f32> {
    let mut sums = vec![(0.0f64, 0usize); n];
    for (k, &v) in cpu.iter().enumerate() {
        let s = &mut sums[group(k)];
        s.0 += v as f64 * v as f64;
        s.1 += 1;
    }
    let scale: Vec<f32> = sums
        .iter()
        .map(|&(s, c)| (s / c.max(1) as f64).sqrt() as f32)
        .collect();
    cpu.iter()
        .enumerate()
        .map(|(k, &v)| WINDOWED_ATOL * scale[group(k)] + WINDOWED_RTOL * v.abs())
        .collect()
}

/// One output of one op, from both sides.
struct Out {
    what: String,
    gpu: Vec<f32>,
    cpu: Vec<f32>,
    /// The largest |GPU − CPU| allowed of each element.
    bound: Vec<f32>,
}

impl Out {
    fn new(what: &str, gpu: Vec<f32>, cpu: &[f32], tol: Tol) -> Out {
        let bound = cpu.iter().map(|c| tol.atol + tol.rtol * c.abs()).collect();
        Out::bounded(what, gpu, cpu, bound)
    }

    /// Windowed tolerance, one group.
    fn windowed(what: &str, gpu: Vec<f32>, cpu: &[f32]) -> Out {
        let bound = windowed_by(cpu, 1, |_| 0);
        Out::bounded(what, gpu, cpu, bound)
    }

    fn bounded(what: &str, gpu: Vec<f32>, cpu: &[f32], bound: Vec<f32>) -> Out {
        assert_eq!(bound.len(), cpu.len(), "{what}: one bound per value");
        Out {
            what: what.to_string(),
            gpu,
            cpu: cpu.to_vec(),
            bound,
        }
    }

    /// |GPU − CPU| / bound of each element: 0 where both are the same (infinities included).
    fn ratios(&self) -> impl Iterator<Item = f32> + '_ {
        self.gpu
            .iter()
            .zip(&self.cpu)
            .zip(&self.bound)
            .map(|((a, r), b)| {
                if a == r {
                    0.0
                } else {
                    let d = (a - r).abs();
                    if d <= *b {
                        d / b
                    } else if d.is_nan() {
                        f32::NAN
                    } else {
                        // Above 1 even where d/b rounds to 1.
                        (d / b).max(1.0 + f32::EPSILON)
                    }
                }
            })
    }

    /// None when every element is within its bound, else the worst element. Nothing to compare
    /// is a failure: it would pass whatever the GPU did.
    fn mismatch(&self) -> Option<String> {
        if self.cpu.is_empty() {
            return Some("no values to compare".to_string());
        }
        if self.gpu.len() != self.cpu.len() {
            return Some(format!(
                "{} GPU vs {} CPU values",
                self.gpu.len(),
                self.cpu.len()
            ));
        }
        let (k, worst) = self
            .ratios()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (worst > 1.0 || worst.is_nan()).then(|| {
            format!(
                "[{k}]: GPU {} vs CPU {} (allowed ±{})",
                self.gpu[k], self.cpu[k], self.bound[k]
            )
        })
    }

    /// The largest of [`Out::ratios`] (NaN if any is): the share of its tolerance used.
    fn used(&self) -> f32 {
        self.ratios().fold(0.0, |a, r| {
            if a.is_nan() || r.is_nan() {
                f32::NAN
            } else {
                a.max(r)
            }
        })
    }

    /// The verdict as printed: the worst element when it fails, else how much of its
    /// tolerance the comparison used (the margin a future rounding change has).
    fn verdict(&self) -> (String, Option<String>) {
        match self.mismatch() {
            Some(m) => (format!("FAIL {m}"), Some(m)),
            None => {
                let used = self.used();
                (format!("ok, {:.1}% of tolerance", 100.0 * used), None)
            }
        }
    }
}

/// Host → device, device → host.
fn up(gpu: &Gpu, x: &[f32]) -> Result<Pooled<f32>> {
    gpu.upload(x)
}

fn down(gpu: &Gpu, x: &Buf) -> Result<Vec<f32>> {
    gpu.download(x)
}

type CaseFn = fn(&Gpu, &mut Rng) -> Result<Vec<Out>>;
type Case = Box<dyn Fn(&Gpu, &mut Rng) -> Result<Vec<Out>>>;

/// Every kernel, by the CPU op it mirrors: the feature cases, then the rest.
fn cases() -> Vec<(String, Case)> {
    let mut cases: Vec<(String, Case)> = feature_cases()
        .into_iter()
        .map(|fc| {
            let name = fc.name.clone();
            let case: Case = Box::new(move |g, r| features(g, r, &fc));
            (name, case)
        })
        .collect();
    let others: [(&str, CaseFn); 20] = [
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
            recurrent(g, r, false, 3, 30)
        }),
        ("gru: 70 samples, 5 steps, 45 → 30", |g, r| {
            recurrent(g, r, true, 5, 30)
        }),
        // Hidden 64 takes the recurrent kernels past the 48 KB of dynamic shared memory a launch
        // gets without cuFuncSetAttribute (Gpu::launch in src/cuda/launch/mod.rs opts in above
        // it):
        // U alone is 64·4·64 floats = 64 KB for the LSTM, and the GRU's U (48 KB) plus its
        // per-sample rows come to 56–57 KB.
        (
            "lstm hidden 64 (> 48 KB shared memory): 70 samples, 3 steps, 45 → 64",
            |g, r| recurrent(g, r, false, 3, 64),
        ),
        (
            "gru hidden 64 (> 48 KB shared memory): 70 samples, 5 steps, 45 → 64",
            |g, r| recurrent(g, r, true, 5, 64),
        ),
        (
            "bn_recurrent_fold lstm: 45 channels, 4·30 gates",
            |g, r| fold(g, r, 45, 120, 120),
        ),
        (
            "bn_recurrent_fold gru: 45 channels, 3·30 gates, 2 biases",
            |g, r| fold(g, r, 45, 90, 180),
        ),
        ("relu", relu),
        ("concat: 3 inputs of 37 rows", concat),
        ("normalize_pictures", normalize),
        ("dropout p = 0.3", dropout),
        ("adam", adam),
        ("gather_pictures", gather),
        ("mse_loss plain and weighted", mse),
        ("neutralized_mse_loss", neutralized),
    ];
    cases.extend(others.into_iter().map(|(name, f)| {
        let case: Case = Box::new(f);
        (name.to_string(), case)
    }));
    cases
}

// ---- the feature layer --------------------------------------------------------------------------

/// What a feature case feeds the layer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Uniform in [0.5, 2): windows of 7–10 days have Sxx ≈ d·0.19 and |x_1| ≥ 0.5, so every op
    /// and its gradient is a short sum of O(1) terms.
    Plain,
    /// Plain with features 0 and 1 scaled by 1e10, as volume is: Sxx ≈ 2e20, so Sxx·Syy ≈ 4e40
    /// overflows f32 (max 3.4e38) where √Sxx·√Syy ≈ 2e20 does not; corr must divide by the
    /// latter. Only for corr, which is scale-free: its values stay in [−1, 1] and its gradient
    /// in a scaled feature is ~1e-10 (∂r/∂x_k = [c^y_k − r·√(Syy/Sxx)·c^x_k]/√(Sxx·Syy)). cov
    /// of a scaled feature is a sum of ~1e10 terms that may cancel to ~1e4, where f32 rounding
    /// on either side is ~50 (the first H200 run's out[14656]): ill conditioned, not a check.
    Volume,
    /// Plain with degenerate windows: feature 2 constant (1.5, exact in every sum and mean, so
    /// Sxx = 0 exactly), feature 5 constant over days 0..15 (its first windows only) and
    /// feature 8 zero on the first day of every window (return's x_1 = 0).
    Flat,
}

/// Volume-scale features of [`Input::Volume`] and their scale.
const VOLUME_FEATURES: usize = 2;
const VOLUME_SCALE: f32 = 1e10;

struct FeatureCase {
    name: String,
    window: usize,
    stride: usize,
    ops: OpSet,
    pairs: Vec<(u16, u16)>,
    input: Input,
}

/// The feature cases: the three model variants with every op, each op alone (so that the
/// gradient of one op is not hidden among the others'), corr at volume scale, and degenerate
/// windows.
fn feature_cases() -> Vec<FeatureCase> {
    let case = |name: String, window, stride, ops, pairs, input| FeatureCase {
        name,
        window,
        stride,
        ops,
        pairs,
        input,
    };
    let v21 = pairs_among(&[0, 1, 4, 6, 9, 10, 13, 14]);
    let mut cases = vec![
        case(
            "ts_features v2: 15 features, all pairs, stride 10".into(),
            10,
            10,
            OpSet::ALL,
            all_pairs(15),
            Input::Plain,
        ),
        case(
            "ts_features v3 branch: stride 5".into(),
            10,
            5,
            OpSet::ALL,
            all_pairs(15),
            Input::Plain,
        ),
        case(
            "ts_features v2.1 pairs, peer op set, window 7 stride 3".into(),
            7,
            3,
            OpSet::PEER6,
            v21,
            Input::Plain,
        ),
    ];
    for op in Op::ALL {
        cases.push(case(
            format!("ts_features {} alone: window 10, stride 5", op.name()),
            10,
            5,
            op.into(),
            all_pairs(15),
            Input::Plain,
        ));
    }
    cases.push(case(
        "ts_features corr, features 0, 1 at volume scale 1e10 (Sxx·Syy overflows f32)".into(),
        10,
        5,
        Op::Corr.into(),
        all_pairs(15),
        Input::Volume,
    ));
    cases.push(case(
        "ts_features flat windows and return's x_1 = 0, window 10, stride 5".into(),
        10,
        5,
        OpSet::ALL,
        all_pairs(15),
        Input::Flat,
    ));
    cases
}

/// One feature case's spec and random inputs (37 samples: more than a CPU lane group, not a
/// multiple of one).
struct FeatureData {
    spec: FeatureSpec,
    b: usize,
    x: Vec<f32>,
    dout: Vec<f32>,
    /// What `dinp` holds before the backward adds to it.
    dx0: Vec<f32>,
}

impl FeatureData {
    fn new(case: &FeatureCase, r: &mut Rng) -> FeatureData {
        let spec = FeatureSpec {
            n_features: 15,
            days: 30,
            window: case.window,
            stride: case.stride,
            ops: case.ops,
            pairs: case.pairs.clone(),
        };
        let (b, days) = (37, spec.days);
        let (fd, sc) = (spec.n_features * days, spec.steps() * spec.channels());
        let scale = |f: usize| match case.input {
            Input::Volume if f < VOLUME_FEATURES => VOLUME_SCALE,
            _ => 1.0,
        };
        let mut x = uniform(r, b * fd, 0.5, 2.0);
        for sample in x.chunks_exact_mut(fd) {
            for (f, row) in sample.chunks_exact_mut(days).enumerate() {
                row.iter_mut().for_each(|v| *v *= scale(f));
                if case.input == Input::Flat {
                    match f {
                        2 => row.fill(1.5),
                        5 => row[..15].fill(1.5),
                        8 => (0..spec.steps()).for_each(|w| row[w * spec.stride] = 0.0),
                        _ => {}
                    }
                }
            }
        }
        let dout = uniform(r, b * sc, -1.0, 1.0);
        // At the scale of each feature's gradient (1/scale), so that adding the gradient to it
        // does not round the gradient away.
        let mut dx0 = uniform(r, b * fd, -1.0, 1.0);
        for (k, v) in dx0.iter_mut().enumerate() {
            *v /= scale(k / days % spec.n_features);
        }
        FeatureData {
            spec,
            b,
            x,
            dout,
            dx0,
        }
    }

    /// The CPU op in `T` on these inputs: (out, dinp after the backward's +=).
    fn cpu<T: Float>(&self, dout: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let cast = |v: &[f32]| v.iter().map(|&x| T::c(x as f64)).collect::<Vec<T>>();
        let back = |v: Vec<T>| v.iter().map(|x| x.f64() as f32).collect::<Vec<f32>>();
        let x = cast(&self.x);
        let mut out = vec![T::zero(); dout.len()];
        ts_features_forward(&mut out, &x, self.b, &self.spec);
        let mut dx = cast(&self.dx0);
        ts_features_backward(&mut dx, &cast(dout), &x, self.b, &self.spec);
        (back(out), back(dx))
    }

    /// Windowed bounds of `out` (scaled per channel: corr, cov, zscore … differ in size) and of
    /// `dinp` (scaled per feature: a volume-scale feature's gradient is ~1e-10).
    fn bounds(&self, out: &[f32], dx: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (c, f, days) = (self.spec.channels(), self.spec.n_features, self.spec.days);
        (
            windowed_by(out, c, |k| k % c),
            windowed_by(dx, f, |k| k / days % f),
        )
    }

    /// Whether each output `[B, S, C]` is degenerate by the CPU op's rule (docs/features.md): corr with a
    /// constant series, stddev and zscore of a constant series, return with x_1 = 0. (Only
    /// exactly constant windows occur in these inputs, never nearly constant ones, so both
    /// sides must agree on every one whatever their rounding.)
    fn degenerate(&self) -> Vec<bool> {
        let s = &self.spec;
        let (f, days, d) = (s.n_features, s.days, s.window);
        let mut channels = Vec::new();
        for op in s.ops.iter() {
            if op.is_pair() {
                channels.extend(s.pairs.iter().map(|&(i, j)| (op, i as usize, j as usize)));
            } else {
                channels.extend((0..f).map(|i| (op, i, i)));
            }
        }
        let mut out = Vec::with_capacity(self.b * s.steps() * channels.len());
        for sample in self.x.chunks_exact(f * days) {
            for step in 0..s.steps() {
                let window = |i: usize| &sample[i * days + step * s.stride..][..d];
                let flat = |i: usize| window(i).iter().all(|&v| v == window(i)[0]);
                out.extend(channels.iter().map(|&(op, i, j)| match op {
                    Op::Corr => flat(i) || flat(j),
                    Op::Stddev | Op::Zscore => flat(i),
                    Op::Return => window(i)[0] == 0.0,
                    _ => false,
                }));
            }
        }
        out
    }
}

fn features(gpu: &Gpu, r: &mut Rng, case: &FeatureCase) -> Result<Vec<Out>> {
    let data = FeatureData::new(case, r);
    let (spec, b) = (&data.spec, data.b);
    let (out, dx) = data.cpu::<f32>(&data.dout);
    let (out_bound, dx_bound) = data.bounds(&out, &dx);

    let dspec = gpu.feature_spec(spec)?;
    let xd = up(gpu, &data.x)?;
    let gpu_pass = |dout: &[f32]| -> Result<(Vec<f32>, Vec<f32>)> {
        let (mut outd, mut dxd) = (gpu.zeros(dout.len())?, up(gpu, &data.dx0)?);
        gpu.ts_features_forward(&mut outd, &xd, b, &dspec)?;
        gpu.ts_features_backward(&mut dxd, &*up(gpu, dout)?, &xd, b, &dspec)?;
        Ok((down(gpu, &outd)?, down(gpu, &dxd)?))
    };
    let (outg, dxg) = gpu_pass(&data.dout)?;
    let mut outs = vec![
        Out::bounded("out", outg.clone(), &out, out_bound),
        Out::bounded("dinp (+=)", dxg, &dx, dx_bound),
    ];
    if case.input == Input::Flat {
        // Degenerate outputs are 0 and pass back exactly 0 (docs/features.md): their values on both
        // sides, and the backward of a dout that is zero except on them, must be exact.
        let degenerate = data.degenerate();
        let pick = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .zip(&degenerate)
                .filter(|p| *p.1)
                .map(|p| *p.0)
                .collect()
        };
        let cpu_values = pick(&out);
        assert!(
            !cpu_values.is_empty() && cpu_values.iter().all(|&v| v == 0.0),
            "the flat case needs degenerate outputs, 0 on the CPU"
        );
        let dout_deg: Vec<f32> = data
            .dout
            .iter()
            .zip(&degenerate)
            .map(|(&g, &deg)| if deg { g } else { 0.0 })
            .collect();
        let (_, dx_deg) = data.cpu::<f32>(&dout_deg);
        assert!(dx_deg == data.dx0, "CPU: degenerate outputs pass back 0");
        outs.push(Out::new(
            "degenerate outputs (= 0)",
            pick(&outg),
            &cpu_values,
            EXACT,
        ));
        outs.push(Out::new(
            "dinp (+=) from degenerate outputs alone (+= 0)",
            gpu_pass(&dout_deg)?.1,
            &dx_deg,
            EXACT,
        ));
    }
    Ok(outs)
}

/// The feature cases are well conditioned: the CPU op in f32 stays within a quarter of each
/// tolerance of the same op in f64, so a GPU with rounding errors of the same size passes with
/// room, and a failure means a wrong kernel, not rounding. (The first real-GPU run failed on a
/// case that was not: cov of a 1e10-scaled feature, where the f32 CPU itself was 24 off f64 and
/// the GPU 26 off on the other side, against a tolerance of 49.) Needs no GPU.
#[test]
fn feature_cases_are_well_conditioned() {
    let mut failures = Vec::new();
    for case in feature_cases() {
        let data = FeatureData::new(&case, &mut stream(17, &case.name));
        let (out, dx) = data.cpu::<f32>(&data.dout);
        let (out64, dx64) = data.cpu::<f64>(&data.dout);
        let (out_bound, dx_bound) = data.bounds(&out, &dx);
        for o in [
            Out::bounded("out", out, &out64, out_bound),
            Out::bounded("dinp (+=)", dx, &dx64, dx_bound),
        ] {
            let used = o.used();
            eprintln!(
                "{} | {}: f32 uses {:.1}% of the tolerance",
                case.name,
                o.what,
                100.0 * used
            );
            if used.is_nan() || used > 0.25 {
                failures.push(format!("{} {}: {:.1}%", case.name, o.what, 100.0 * used));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "ill-conditioned feature cases (f32 vs f64 over a quarter of the tolerance):\n{}",
        failures.join("\n")
    );
}

// ---- the other kernels --------------------------------------------------------------------------

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
        Out::windowed("out", down(gpu, &outd)?, &out),
        Out::windowed("dinp (+=)", down(gpu, &dxd)?, &dx),
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
fn fold(gpu: &Gpu, r: &mut Rng, c: usize, g: usize, nb: usize) -> Result<Vec<Out>> {
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
        Out::windowed("out", down(gpu, &outd)?, &out),
        Out::windowed("dinp (+=)", down(gpu, &dxd)?, &dx),
        Out::windowed("dw (+=)", down(gpu, &dwd)?, &dw),
        Out::windowed("dbias (+=)", down(gpu, &dbd)?, &db),
    ])
}

/// LSTM (gru = false) or GRU over 70 samples: more than a CPU sample chunk (64) and not a
/// multiple of the kernels' samples per block (4).
fn recurrent(gpu: &Gpu, r: &mut Rng, gru: bool, s: usize, h: usize) -> Result<Vec<Out>> {
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

/// Three inputs of widths 5, 1, 12 placed side by side, and the gradient split back (+=).
fn concat(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
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

/// Pictures with prices ~10, volume-like series ~1e6 and one all-zero series (its mean 0).
fn normalize(gpu: &Gpu, r: &mut Rng) -> Result<Vec<Out>> {
    let b = 23;
    let mut x = uniform(r, b * PICTURE_LEN, 0.5, 2.0);
    for (k, v) in x.iter_mut().enumerate() {
        match (k % PICTURE_LEN) / 30 {
            1..=4 | 6 => *v *= 10.0,
            5 | 7 => *v *= 1e6,
            _ => {}
        }
    }
    x[3 * PICTURE_LEN + 11 * 30..3 * PICTURE_LEN + 12 * 30].fill(0.0);
    let mut out = vec![0.0; x.len()];
    alphanet::ops::normalize::normalize_pictures(&mut out, &x, b);
    let mut outd = gpu.zeros(x.len())?;
    gpu.normalize_pictures(&mut outd, &*up(gpu, &x)?, b)?;
    Ok(vec![Out::new("out", down(gpu, &outd)?, &out, ELEMENT)])
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
        &*up(gpu, &features)?,
        n_stocks,
        &*gpu.upload(&flat)?,
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

/// Runs every case with its own random stream; returns the GPU outputs of each, and the lines
/// of every mismatch.
fn run_cases(gpu: &Gpu) -> (Vec<Vec<Vec<f32>>>, Vec<String>) {
    let (mut outputs, mut failures) = (Vec::new(), Vec::new());
    for (name, case) in cases() {
        let outs = case(gpu, &mut stream(17, &name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        for o in &outs {
            let (line, failure) = o.verdict();
            eprintln!("{name} | {}: {} values, {line}", o.what, o.cpu.len());
            if let Some(v) = failure {
                failures.push(format!("{name} {}: {v}", o.what));
            }
        }
        outputs.push(outs.into_iter().map(|o| o.gpu).collect());
    }
    (outputs, failures)
}

#[test]
fn every_kernel_matches_its_cpu_op() {
    let gpu = gpu("every_kernel_matches_its_cpu_op");
    let (_, failures) = run_cases(&gpu);
    assert!(failures.is_empty(), "GPU ≠ CPU:\n{}", failures.join("\n"));
}

// ---- every model trained on the GPU against the same model code on the CPU ------------------

const BATCH: usize = 300;
const STEPS: usize = 3;
/// The large shape: one step at the batch size of real training, on a GPU. The CPU stand-in of
/// the driver took 67 s for it (both setups, on a busy 2-core machine), so there it runs a
/// quarter of it, still hundreds of blocks per launch and the same code paths.
const LARGE_BATCH: usize = 16384;
const EMULATED_LARGE_BATCH: usize = 4096;

/// The configurations trained, every model with every loss: v2 (features → BN → LSTM → BN →
/// Dropout → Dense) with dropout on, so that every layer runs, and v2.3 weights; v2.1 + v2.2 +
/// v2.3 (8 drawn features, the loss neutralized within dates against three styles, weights)
/// without dropout; v1 (features → BN → pool → BN → concat → Dense → ReLU → Dropout → Dense) with
/// its dropout and plain MSE, and with the neutralized loss; v3 (two GRU branches, concat) with
/// dropout and weights, and with the neutralized loss.
const SETUPS: [&str; 6] = [
    "v2 + dropout + v2.3",
    "v2.1 + v2.2 + v2.3",
    "v1 + dropout",
    "v1 + v2.2",
    "v3 + dropout + v2.3",
    "v3 + v2.2",
];
/// The setups also run at the batch size of real training (v2's, the model the GPU is timed on).
const LARGE_SETUPS: [&str; 2] = [SETUPS[0], SETUPS[1]];

/// A model of one setup and a batch of `b` samples in dates: a large one (57% of the rows less
/// the small ones), about b/16 rows in dates of 5 rows, and a large one (43%). A 5-row date is
/// below the neutralized loss's 2(K+1) = 8 rows and falls back to plain MSE. Without them every
/// date would be neutralized, which projects the intercept out of dpred (Σ dpred = 0 within a
/// date), so the gradients of output.bias and bn_lstm.beta (sums of dpred times a constant)
/// would be exactly 0 and their computed values pure rounding, and with too few such rows,
/// nearly so: at batch 16384 one 5-row date left f32 and f64 4× the windowed tolerance apart
/// (`training_comparisons_are_well_conditioned` checks that they are not).
fn setup_of(setup: &str, b: usize) -> (Model<f32>, Batch<f32>, LossConfig, AdamConfig) {
    let has = |part: &str| setup.split(" + ").any(|p| p == part);
    let arch = match &setup[..2] {
        "v1" => Arch::V1,
        "v3" => Arch::V3,
        _ => Arch::V2,
    };
    let dropout = if has("dropout") { 0.1 } else { 0.0 };
    let cfg = ModelConfig {
        arch,
        dropout,
        v1_dropout: dropout,
        pair_sample: has("v2.1").then_some(8),
        seed: 5,
        ..ModelConfig::default()
    };
    let model = Model::<f32>::new(&cfg).unwrap();
    let mut r = stream(5, "cuda_vs_cpu batch");
    let x = uniform(&mut r, b * cfg.n_features * cfg.days, 0.5, 2.0);
    let y = uniform(&mut r, b, -1.0, 1.0);
    let small = b / 16 / 5;
    let first_small = b * 17 / 30 - 5 * small;
    let offsets: Vec<usize> = std::iter::once(0)
        .chain((0..=small).map(|i| first_small + 5 * i))
        .chain(std::iter::once(b))
        .collect();
    let w = offsets
        .windows(2)
        .flat_map(|g| long_side_weights(&y[g[0]..g[1]], 2.0))
        .collect();
    let k = 3;
    let batch = Batch {
        x,
        y,
        w,
        styles: uniform(&mut r, b * k, -2.0, 2.0),
        k,
        offsets,
    };
    let loss = LossConfig {
        neutralize: has("v2.2"),
        long_weight: has("v2.3").then_some(2.0),
    };
    (model, batch, loss, AdamConfig::default())
}

/// The training state after a step (or before the first): the loss (with its L2 term), and per
/// parameter tensor (in store order) its gradient, value and Adam moments after the step, and
/// the BN moving statistics.
struct StepOut {
    loss: f32,
    grads: Vec<Vec<f32>>,
    params: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    moving: Vec<Vec<f32>>,
}

impl StepOut {
    fn of<T: Float>(model: &Model<T>, loss: f64) -> StepOut {
        let per_param = |v: &[T]| -> Vec<Vec<f32>> {
            let entries = &model.store.entries;
            entries
                .iter()
                .map(|e| to_f32(&v[e.range.clone()]))
                .collect()
        };
        StepOut {
            loss: loss as f32,
            grads: per_param(&model.store.grad),
            params: per_param(&model.store.data),
            m: per_param(&model.store.m),
            v: per_param(&model.store.v),
            moving: model
                .bn
                .iter()
                .flat_map(|s| [to_f32(&s.moving_mean), to_f32(&s.moving_var)])
                .collect(),
        }
    }
}

fn to_f32<T: Float>(v: &[T]) -> Vec<f32> {
    v.iter().map(|x| x.f64() as f32).collect()
}

fn cast<T: Float>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&x| T::c(x as f64)).collect()
}

/// The state before the first step, then after each of `steps` CPU `train_step`s.
/// In `T` (f64: the exact answer up to the rounding of its results to f32) from the f32 model.
fn cpu_steps<T: Float>(setup: &str, b: usize, steps: usize) -> Vec<StepOut> {
    let (model32, batch, loss, adam) = setup_of(setup, b);
    let mut model = Model::<T>::new(&model32.cfg).unwrap();
    model.store.data = cast(&to_f32(&model32.store.data));
    let batch = Batch {
        x: cast(&batch.x),
        y: cast(&batch.y),
        w: cast(&batch.w),
        styles: cast(&batch.styles),
        k: batch.k,
        offsets: batch.offsets,
    };
    let mut states = vec![StepOut::of(&model, f64::NAN)];
    for step in 0..steps {
        let (l, _) = train_step(&mut model, &batch, &loss, &adam, step as u64);
        states.push(StepOut::of(&model, l));
    }
    states
}

/// The same steps with the same model code on the GPU ([`train_step_on`]), its state brought
/// back after each one; also the predictions of its inference pass on the batch after the last
/// step, and the model holding its weights (for `Model::predict`).
fn gpu_steps(
    gpu: &Gpu,
    setup: &str,
    b: usize,
    steps: usize,
) -> Result<(Vec<StepOut>, Vec<f32>, Model<f32>)> {
    let (model, batch, loss, adam) = setup_of(setup, b);
    let mut states = vec![StepOut::of(&model, f64::NAN)];
    let mut net = model.to_device(gpu)?;
    let on_device = gpu.batch(&batch, Device::upload(gpu, &batch.x)?)?;
    for step in 0..steps {
        let (l, _) = train_step_on(gpu, &mut net, &on_device, &loss, &adam, step as u64)?;
        states.push(StepOut::of(&net.to_host(gpu)?, l));
    }
    let pred = net.predict_on(gpu, &Device::upload(gpu, &batch.x)?, b)?;
    Ok((states, pred, net.to_host(gpu)?))
}

/// Step-by-step comparisons of two runs of training steps (`cpu[0]`, `dev[0]`: the common
/// start). Per step t and parameter tensor:
/// - its gradient, windowed;
/// - its Adam update Δθ = θ_t − θ_{t−1}. Adam scales every update to about ±lr whatever the
///   gradient's size, so values after a few steps (atol ~lr) pass a zero or sign-flipped
///   gradient. The update is compared instead: where the gradients' allowed difference, carried
///   through Adam, is small against the update, within that carried bound; elsewhere (moments
///   that round to about 0) within twice the largest update Adam can make;
/// - the GPU's update replayed on the host from its own state and gradient (`adam_update`), to
///   element tolerance: Adam applied to exactly the gradient compared above.
///
/// And per step the loss, and the change of the BN moving statistics (not their value, which
/// moves by ~1e-2 of itself a step).
fn compare_steps(
    cpu: &[StepOut],
    dev: &[StepOut],
    names: &[String],
    adam: &AdamConfig,
) -> Vec<Vec<Out>> {
    let (b1, b2, eps) = (adam.beta1 as f32, adam.beta2 as f32, adam.eps as f32);
    // Per tensor and element, the bounds n_m, n_v of |m_GPU − m_CPU| and |v_GPU − v_CPU| that
    // the gradient bounds allow: m and v are running sums of g and g², so
    // n_m ← β1·n_m + (1 − β1)·δg and n_v ← β2·n_v + (1 − β2)·(2|g|·δg + δg²).
    let mut noise: Vec<[Vec<f32>; 2]> = cpu[0]
        .grads
        .iter()
        .map(|g| [vec![0.0; g.len()], vec![0.0; g.len()]])
        .collect();
    let change = |after: &[f32], before: &[f32]| -> Vec<f32> {
        after.iter().zip(before).map(|(a, b)| a - b).collect()
    };
    let mut steps = Vec::new();
    for t in 1..cpu.len() {
        let (c0, c, d0, d) = (&cpu[t - 1], &cpu[t], &dev[t - 1], &dev[t]);
        let lr_t = adam.lr_t(t as u64) as f32;
        // The largest |Δθ| Adam can make at step t from zero moments: with g_j the gradient j
        // steps back, v ≥ (1 − β2)·β2^j·g_j² for each j, so
        // |m|/√v ≤ Σ_j (1 − β1)·β1^j / √((1 − β2)·β2^j).
        let step_max = lr_t
            * (0..t as i32)
                .map(|j| (1.0 - b1) * b1.powi(j) / ((1.0 - b2) * b2.powi(j)).sqrt())
                .sum::<f32>();
        let mut outs = vec![Out::windowed("loss", vec![d.loss], &[c.loss])];
        for (k, name) in names.iter().enumerate() {
            let grad = Out::windowed(&format!("grad {name}"), d.grads[k].clone(), &c.grads[k]);
            let [nm, nv] = &mut noise[k];
            for (e, (&dg, &g)) in grad.bound.iter().zip(&c.grads[k]).enumerate() {
                nm[e] = b1 * nm[e] + (1.0 - b1) * dg;
                nv[e] = b2 * nv[e] + (1.0 - b2) * (2.0 * g.abs() * dg + dg * dg);
            }
            let (cd, dd) = (
                change(&c.params[k], &c0.params[k]),
                change(&d.params[k], &d0.params[k]),
            );
            let mut determined = 0;
            let bound: Vec<f32> = (0..cd.len())
                .map(|e| {
                    // Δθ = −lr_t·m/(√v + ε): |δΔθ| ≤ lr_t·[n_m/(√v + ε) + |m|·δ√v/(√v + ε)²]
                    // with δ√v ≤ min(n_v/(2√v), √n_v); twice that, plus up to an ulp of θ
                    // (2ε·|θ|) on each side for rounding θ − Δθ. Determined where that is at
                    // most a quarter of |Δθ|: a zero update is then off by 4 bounds, a
                    // sign-flipped one by 8.
                    let (m, sv) = (c.m[k][e], c.v[k][e].sqrt());
                    let dsv = (nv[e] / (2.0 * sv)).min(nv[e].sqrt());
                    let den = sv + eps;
                    let carried = 2.0 * lr_t * (nm[e] / den + m.abs() * dsv / (den * den))
                        + 4.0 * f32::EPSILON * c.params[k][e].abs();
                    if 4.0 * carried <= cd[e].abs() {
                        determined += 1;
                        carried
                    } else {
                        2.0 * step_max
                    }
                })
                .collect();
            let n = cd.len();
            outs.push(grad);
            outs.push(Out::bounded(
                &format!("Adam update {name} ({determined} of {n} determined)"),
                dd,
                &cd,
                bound,
            ));
            let (mut p, mut m, mut v) = (d0.params[k].clone(), d0.m[k].clone(), d0.v[k].clone());
            adam_update(&mut p, &mut m, &mut v, &d.grads[k], n, lr_t, b1, b2, eps);
            // θ to element tolerance; m and v (which may be ~1e-8) to 1e-5 of their size.
            let mut replay_bound = Vec::with_capacity(3 * n);
            replay_bound.extend(p.iter().map(|x| ELEMENT.atol + ELEMENT.rtol * x.abs()));
            for moment in [&m, &v] {
                let scale = rms(moment);
                replay_bound.extend(moment.iter().map(|x| 1e-5 * (scale + x.abs())));
            }
            let cat = |s: &StepOut| [&s.params[k][..], &s.m[k], &s.v[k]].concat();
            outs.push(Out::bounded(
                &format!("Adam replayed {name} (θ, m, v)"),
                cat(d),
                &[p, m, v].concat(),
                replay_bound,
            ));
        }
        for (k, (dm, cm)) in d.moving.iter().zip(&c.moving).enumerate() {
            outs.push(Out::windowed(
                &format!("BN moving {} {} change", ["mean", "var"][k % 2], k / 2),
                change(dm, &d0.moving[k]),
                &change(cm, &c0.moving[k]),
            ));
        }
        steps.push(outs);
    }
    steps
}

fn names_of(setup: &str) -> Vec<String> {
    setup_of(setup, BATCH)
        .0
        .store
        .entries
        .iter()
        .map(|e| e.name.clone())
        .collect()
}

/// Prints every comparison; returns the failures.
fn report(label: &str, outs: &[Out]) -> Vec<String> {
    let mut failures = Vec::new();
    for o in outs {
        let (line, failure) = o.verdict();
        eprintln!("{label} | {}: {} values, {line}", o.what, o.cpu.len());
        failures.extend(failure.map(|f| format!("{label} {}: {f}", o.what)));
    }
    failures
}

#[test]
fn training_steps_of_every_model_match_cpu() {
    let gpu = gpu("training_steps_of_every_model_match_cpu");
    let mut failures = Vec::new();
    for setup in SETUPS {
        let cpu = cpu_steps::<f32>(setup, BATCH, STEPS);
        let (dev, _, _) = gpu_steps(&gpu, setup, BATCH, STEPS).unwrap();
        let adam = AdamConfig::default();
        for (t, outs) in compare_steps(&cpu, &dev, &names_of(setup), &adam)
            .iter()
            .enumerate()
        {
            failures.extend(report(&format!("{setup} step {}", t + 1), outs));
        }
    }
    assert!(failures.is_empty(), "GPU ≠ CPU:\n{}", failures.join("\n"));
}

/// The training comparisons leave room for rounding: the CPU steps in f32 against the same steps
/// in f64 use at most a quarter of any tolerance of [`compare_steps`], so a GPU whose rounding is
/// of the same size passes, and a failure means a wrong kernel. Needs no GPU.
#[test]
fn training_comparisons_are_well_conditioned() {
    let mut failures = Vec::new();
    let small = SETUPS.into_iter().map(|s| (s, BATCH, STEPS));
    let large = LARGE_SETUPS
        .into_iter()
        .flat_map(|s| [(s, LARGE_BATCH, 1), (s, EMULATED_LARGE_BATCH, 1)]);
    for (setup, b, steps) in small.chain(large) {
        let (c32, c64) = (
            cpu_steps::<f32>(setup, b, steps),
            cpu_steps::<f64>(setup, b, steps),
        );
        let adam = AdamConfig::default();
        let names = names_of(setup);
        let setup = format!("{setup} batch {b}");
        for (t, outs) in compare_steps(&c32, &c64, &names, &adam).iter().enumerate() {
            // The replay repeats the GPU's f32 arithmetic of Adam, which the f64 run does not
            // share ((1 − β2) is 1.3e-5 off 1e-3 in f32): not a comparison of rounding noise.
            for o in outs.iter().filter(|o| !o.what.starts_with("Adam replayed")) {
                let used = o.used();
                eprintln!(
                    "{setup} step {} | {}: f32 uses {:.1}% of the tolerance",
                    t + 1,
                    o.what,
                    100.0 * used
                );
                if used.is_nan() || used > 0.25 {
                    failures.push(format!(
                        "{setup} step {} {}: {:.1}%",
                        t + 1,
                        o.what,
                        100.0 * used
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "training comparisons too tight for f32 rounding (over a quarter of the tolerance):\n{}",
        failures.join("\n")
    );
}

/// Inference on the GPU against `Model::predict` with the same weights and moving statistics
/// (those the GPU left after training steps, brought back with `Net::to_host`).
#[test]
fn gpu_predict_matches_cpu_on_the_same_weights() {
    let gpu = gpu("gpu_predict_matches_cpu_on_the_same_weights");
    let mut failures = Vec::new();
    for setup in SETUPS {
        let (_, dev, mut model) = gpu_steps(&gpu, setup, BATCH, STEPS).unwrap();
        let cpu = model.predict(setup_of(setup, BATCH).1.x, BATCH);
        failures.extend(report(setup, &[Out::windowed("predictions", dev, &cpu)]));
    }
    assert!(failures.is_empty(), "GPU ≠ CPU:\n{}", failures.join("\n"));
}

/// One training step and the predictions after it at the batch size of real training, where
/// grids, reductions and the neutralized loss's date groups (8264 and 7100 rows, and 204 of 5) are large.
#[test]
fn v2_large_batch_step_matches_cpu() {
    let gpu = gpu("v2_large_batch_step_matches_cpu");
    let b = if gpu.info.emulated {
        EMULATED_LARGE_BATCH
    } else {
        LARGE_BATCH
    };
    eprintln!(
        "v2_large_batch_step_matches_cpu: batch {b} ({})",
        if gpu.info.emulated {
            "the CPU stand-in; 16384 on a GPU"
        } else {
            "a GPU"
        }
    );
    let mut failures = Vec::new();
    for setup in LARGE_SETUPS {
        let cpu = cpu_steps::<f32>(setup, b, 1);
        let (dev, pred, mut model) = gpu_steps(&gpu, setup, b, 1).unwrap();
        let adam = AdamConfig::default();
        let label = format!("{setup} batch {b}");
        for outs in compare_steps(&cpu, &dev, &names_of(setup), &adam) {
            failures.extend(report(&label, &outs));
        }
        let cpu_pred = model.predict(setup_of(setup, b).1.x, b);
        failures.extend(report(
            &label,
            &[Out::windowed("predictions", pred, &cpu_pred)],
        ));
    }
    assert!(failures.is_empty(), "GPU ≠ CPU:\n{}", failures.join("\n"));
}

#[test]
fn gpu_reruns_are_bit_identical() {
    let gpu = gpu("gpu_reruns_are_bit_identical");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let (first, _) = run_cases(&gpu);
    let (second, _) = run_cases(&gpu);
    for ((name, _), (a, b)) in cases().iter().zip(first.iter().zip(&second)) {
        for (x, y) in a.iter().zip(b) {
            assert_eq!(bits(x), bits(y), "{name}: two runs differ");
        }
    }
    let setup = SETUPS[0];
    let (a, b) = (
        gpu_steps(&gpu, setup, BATCH, STEPS).unwrap().0,
        gpu_steps(&gpu, setup, BATCH, STEPS).unwrap().0,
    );
    for (step, (x, y)) in a.iter().zip(&b).enumerate().skip(1) {
        assert_eq!(
            x.loss.to_bits(),
            y.loss.to_bits(),
            "step {step}: loss differs"
        );
        for (p, q) in [&x.grads, &x.params, &x.m, &x.v, &x.moving]
            .into_iter()
            .flatten()
            .zip(
                [&y.grads, &y.params, &y.m, &y.v, &y.moving]
                    .into_iter()
                    .flatten(),
            )
        {
            assert_eq!(bits(p), bits(q), "step {step}: training differs");
        }
    }
}

/// Every device buffer comes from the GPU's memory pool and returns to it (docs/engine.md, "Memory"),
/// so once a batch shape has been trained on, further steps at that shape allocate nothing from
/// the driver: here the first step of each setup allocates, the next ones only reuse.
#[test]
fn steps_at_a_seen_batch_shape_allocate_no_device_memory() {
    let gpu = gpu("steps_at_a_seen_batch_shape_allocate_no_device_memory");
    for setup in [SETUPS[0], SETUPS[1], SETUPS[4]] {
        let (model, batch, loss, adam) = setup_of(setup, 64);
        let mut net = model.to_device(&gpu).unwrap();
        let on_device = gpu
            .batch(&batch, Device::upload(&gpu, &batch.x).unwrap())
            .unwrap();
        train_step_on(&gpu, &mut net, &on_device, &loss, &adam, 0).unwrap();
        let before = gpu.pool_stats();
        for t in 1..3 {
            train_step_on(&gpu, &mut net, &on_device, &loss, &adam, t).unwrap();
        }
        let after = gpu.pool_stats();
        assert_eq!(
            after.allocated, before.allocated,
            "{setup}: steps 2 and 3 allocated device memory ({before:?} → {after:?})"
        );
        assert!(
            after.reused > before.reused + 20,
            "{setup}: the steps took too few buffers from the pool to be real steps ({before:?} → {after:?})"
        );
    }
}
