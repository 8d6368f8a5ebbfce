//! CPU vs CUDA, training (docs/testing.md): three training steps of every model (v1, v2, v3) with
//! every loss (plain, weighted, neutralized), the one model code run on the GPU as a `Device`
//! against the same code on the CPU, one step of v2 at the batch size of real training, the
//! predictions against `Model::predict`, and the memory pool's reuse across steps. The kernels
//! one by one, and determinism, are in `tests/cuda_vs_cpu_kernels`.
//!
//! Every test runs on a real GPU when the driver sees one and on the CPU stand-in for the CUDA
//! driver otherwise (docs/cuda_emulator.md); with ALPHANET_REQUIRE_GPU=1 (scripts/gpu_check.sh)
//! a missing real GPU is a failure.

use alphanet::autograd::adam::{adam_update, AdamConfig};
use alphanet::device::Device;
use alphanet::model::Model;
use alphanet::train::step::{train_step, train_step_on, Batch};
use alphanet::Float;

mod common;
use common::gpu::{gpu, rms, Out, ELEMENT};
use common::model_steps::{gpu_steps, setup_of, to_f32, StepOut, BATCH, SETUPS, STEPS};

/// The large shape: one step at the batch size of real training, on a GPU. The CPU stand-in of
/// the driver took 67 s for it (both setups, on a busy 2-core machine), so there it runs a
/// quarter of it, still hundreds of blocks per launch and the same code paths.
const LARGE_BATCH: usize = 16384;
const EMULATED_LARGE_BATCH: usize = 4096;

/// The setups also run at the batch size of real training (v2's, the model the GPU is timed on).
const LARGE_SETUPS: [&str; 2] = [SETUPS[0], SETUPS[1]];

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
