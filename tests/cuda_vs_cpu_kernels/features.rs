//! The feature layer's cases: the three model variants with every op, each op alone, corr at
//! volume scale, and degenerate windows.

use crate::common::gpu::{windowed_by, Out, EXACT};
use crate::common::uniform;
use crate::{down, up};
use alphanet::cuda::Gpu;
use alphanet::ops::ts_features::*;
use alphanet::util::rng::Rng;
use alphanet::{Float, Result};

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

pub(crate) struct FeatureCase {
    pub(crate) name: String,
    window: usize,
    stride: usize,
    ops: OpSet,
    pairs: Vec<(u16, u16)>,
    input: Input,
}

/// The feature cases: the three model variants with every op, each op alone (so that the
/// gradient of one op is not hidden among the others'), corr at volume scale, and degenerate
/// windows.
pub(crate) fn feature_cases() -> Vec<FeatureCase> {
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
pub(crate) struct FeatureData {
    spec: FeatureSpec,
    b: usize,
    x: Vec<f32>,
    pub(crate) dout: Vec<f32>,
    /// What `dinp` holds before the backward adds to it.
    dx0: Vec<f32>,
}

impl FeatureData {
    pub(crate) fn new(case: &FeatureCase, r: &mut Rng) -> FeatureData {
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
    pub(crate) fn cpu<T: Float>(&self, dout: &[f32]) -> (Vec<f32>, Vec<f32>) {
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
    pub(crate) fn bounds(&self, out: &[f32], dx: &[f32]) -> (Vec<f32>, Vec<f32>) {
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

pub(crate) fn features(gpu: &Gpu, r: &mut Rng, case: &FeatureCase) -> Result<Vec<Out>> {
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
