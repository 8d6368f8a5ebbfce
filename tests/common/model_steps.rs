//! The model setups that the CPU-vs-CUDA binaries train (`tests/cuda_vs_cpu_training.rs`, and
//! the reruns of `tests/cuda_vs_cpu_kernels`), the training state after a step, and the steps on
//! the GPU.

use super::uniform;
use alphanet::autograd::adam::AdamConfig;
use alphanet::cuda::Gpu;
use alphanet::device::Device;
use alphanet::model::{Arch, LossConfig, Model, ModelConfig};
use alphanet::ops::loss::long_side_weights;
use alphanet::train::step::{train_step_on, Batch};
use alphanet::util::rng::stream;
use alphanet::{Float, Result};

/// The batch and the number of steps of each setup's comparison.
pub const BATCH: usize = 300;
pub const STEPS: usize = 3;

/// The configurations trained, every model with every loss: v2 (features → BN → LSTM → BN →
/// Dropout → Dense) with dropout on, so that every layer runs, and v2.3 weights; v2.1 + v2.2 +
/// v2.3 (8 drawn features, the loss neutralized within dates against three styles, weights)
/// without dropout; v1 (features → BN → pool → BN → concat → Dense → ReLU → Dropout → Dense) with
/// its dropout and plain MSE, and with the neutralized loss; v3 (two GRU branches, concat) with
/// dropout and weights, and with the neutralized loss.
pub const SETUPS: [&str; 6] = [
    "v2 + dropout + v2.3",
    "v2.1 + v2.2 + v2.3",
    "v1 + dropout",
    "v1 + v2.2",
    "v3 + dropout + v2.3",
    "v3 + v2.2",
];

/// A model of one setup and a batch of `b` samples in dates: a large one (57% of the rows less
/// the small ones), about b/16 rows in dates of 5 rows, and a large one (43%). A 5-row date is
/// below the neutralized loss's 2(K+1) = 8 rows and falls back to plain MSE. Without them every
/// date would be neutralized, which projects the intercept out of dpred (Σ dpred = 0 within a
/// date), so the gradients of output.bias and bn_lstm.beta (sums of dpred times a constant)
/// would be exactly 0 and their computed values pure rounding, and with too few such rows,
/// nearly so: at batch 16384 one 5-row date left f32 and f64 4× the windowed tolerance apart
/// (`training_comparisons_are_well_conditioned` checks that they are not).
pub fn setup_of(setup: &str, b: usize) -> (Model<f32>, Batch<f32>, LossConfig, AdamConfig) {
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
pub struct StepOut {
    pub loss: f32,
    pub grads: Vec<Vec<f32>>,
    pub params: Vec<Vec<f32>>,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    pub moving: Vec<Vec<f32>>,
}

impl StepOut {
    pub fn of<T: Float>(model: &Model<T>, loss: f64) -> StepOut {
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

pub fn to_f32<T: Float>(v: &[T]) -> Vec<f32> {
    v.iter().map(|x| x.f64() as f32).collect()
}

/// The same steps with the same model code on the GPU ([`train_step_on`]), its state brought
/// back after each one; also the predictions of its inference pass on the batch after the last
/// step, and the model holding its weights (for `Model::predict`).
pub fn gpu_steps(
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
