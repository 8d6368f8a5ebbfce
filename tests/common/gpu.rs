//! What the CPU-vs-CUDA test binaries (`tests/cuda_vs_cpu_*`) share: the GPU they run on, how
//! strict each comparison is, and one output of one op compared from both sides.

use alphanet::cuda::Gpu;

/// The GPU when the driver sees one, else the CPU stand-in of the CUDA driver
/// (`alphanet::cuda::open_for_tests`), so that every case runs on every machine.
/// ALPHANET_REQUIRE_GPU=1 (scripts/gpu_check.sh) demands a real GPU: without one this fails.
pub fn gpu(test: &str) -> Gpu {
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
pub struct Tol {
    pub atol: f32,
    pub rtol: f32,
}

/// docs/testing.md's tolerance of windowed ops and every reduction (sums in a different order on
/// each side): atol 1e-4 (relative to the values' root mean square, see [`windowed_by`]), rtol 1e-3.
pub const WINDOWED_ATOL: f32 = 1e-4;
pub const WINDOWED_RTOL: f32 = 1e-3;
/// Element-wise arithmetic: nvcc fuses a·b + c into one rounding where the CPU rounds twice,
/// a difference of up to half an ulp of an O(1) product, even when the result itself is ~0.
pub const ELEMENT: Tol = Tol {
    atol: 1e-6,
    rtol: 1e-6,
};
/// Copies, comparisons, the dropout hash and degenerate windows: the same bits.
pub const EXACT: Tol = Tol {
    atol: 0.0,
    rtol: 0.0,
};

pub fn rms(v: &[f32]) -> f32 {
    let sum: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
    (sum / v.len().max(1) as f64).sqrt() as f32
}

/// The windowed bound of each element of `cpu`, whose element k belongs to group `group(k)` of
/// `n` (a channel, a feature): atol = 1e-4·rms(group) + 1e-3·|value|. For O(1) values that is
/// docs/testing.md's atol 1e-4; for a group of small values an absolute 1e-4 would check nothing.
pub fn windowed_by(cpu: &[f32], n: usize, group: impl Fn(usize) -> usize) -> Vec<f32> {
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
pub struct Out {
    pub what: String,
    pub gpu: Vec<f32>,
    pub cpu: Vec<f32>,
    /// The largest |GPU − CPU| allowed of each element.
    pub bound: Vec<f32>,
}

impl Out {
    pub fn new(what: &str, gpu: Vec<f32>, cpu: &[f32], tol: Tol) -> Out {
        let bound = cpu.iter().map(|c| tol.atol + tol.rtol * c.abs()).collect();
        Out::bounded(what, gpu, cpu, bound)
    }

    /// Windowed tolerance, one group.
    pub fn windowed(what: &str, gpu: Vec<f32>, cpu: &[f32]) -> Out {
        let bound = windowed_by(cpu, 1, |_| 0);
        Out::bounded(what, gpu, cpu, bound)
    }

    pub fn bounded(what: &str, gpu: Vec<f32>, cpu: &[f32], bound: Vec<f32>) -> Out {
        assert_eq!(bound.len(), cpu.len(), "{what}: one bound per value");
        Out {
            what: what.to_string(),
            gpu,
            cpu: cpu.to_vec(),
            bound,
        }
    }

    /// |GPU − CPU| / bound of each element: 0 where both are the same (infinities included).
    pub fn ratios(&self) -> impl Iterator<Item = f32> + '_ {
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
    pub fn mismatch(&self) -> Option<String> {
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
    pub fn used(&self) -> f32 {
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
    pub fn verdict(&self) -> (String, Option<String>) {
        match self.mismatch() {
            Some(m) => (format!("FAIL {m}"), Some(m)),
            None => {
                let used = self.used();
                (format!("ok, {:.1}% of tolerance", 100.0 * used), None)
            }
        }
    }
}
