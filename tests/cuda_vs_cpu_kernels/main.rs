//! CPU vs CUDA, the kernels (docs/testing.md): every kernel's launch wrapper, forward and
//! backward, against its CPU reference op on the same random inputs, by family: the feature layer
//! (`features.rs`), the network's layers (`layers.rs`), the input pictures (`inputs.rs`), the
//! losses and the Adam update (`losses.rs`); and determinism (two GPU runs bit-identical, kernels
//! and training steps). The training comparisons are in `tests/cuda_vs_cpu_training.rs`.
//! scripts/kernel_mutants.sh shows that each fault it injects into kernels/ fails this suite.
//!
//! Every test runs on a real GPU when the driver sees one and on the CPU stand-in for the CUDA
//! driver otherwise (docs/cuda_emulator.md); with ALPHANET_REQUIRE_GPU=1 (scripts/gpu_check.sh)
//! a missing real GPU is a failure.

use alphanet::cuda::{CudaSlice, Gpu, Pooled};
use alphanet::ops::elementwise::Activation;
use alphanet::util::rng::{stream, Rng};
use alphanet::Result;

#[path = "../common/mod.rs"]
mod common;
use common::gpu::{gpu, Out};
use common::model_steps::{gpu_steps, BATCH, SETUPS, STEPS};

mod features;
mod inputs;
mod layers;
mod losses;

use features::{feature_cases, features, FeatureData};
use inputs::{gather, normalize};
use layers::{activation, batchnorm, concat, dense, dropout, fold, pool, recurrent};
use losses::{adam, mse, neutralized};

type Buf = CudaSlice<f32>;

/// Host → device, device → host.
pub(crate) fn up(gpu: &Gpu, x: &[f32]) -> Result<Pooled<f32>> {
    gpu.upload(x)
}

pub(crate) fn down(gpu: &Gpu, x: &Buf) -> Result<Vec<f32>> {
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
    let others: [(&str, CaseFn); 19] = [
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
    // Every activation, so a new one is cross-checked without a line here.
    cases.extend(Activation::ALL.into_iter().map(|act| {
        let case: Case = Box::new(move |g, r| activation(g, r, act));
        (format!("activation {}", act.name()), case)
    }));
    cases
}

/// The length of the element-wise cases (activations, dropout, adam).
pub(crate) const N: usize = 3001;

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

#[test]
fn every_kernel_matches_its_cpu_op() {
    let gpu = gpu("every_kernel_matches_its_cpu_op");
    let (_, failures) = run_cases(&gpu);
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
