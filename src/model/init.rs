//! Keras initialisers: Glorot uniform, orthogonal, constants.

use crate::util::float::Float;
use crate::util::rng::Rng;
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

/// Glorot (Xavier) uniform for a `[fan_in, fan_out]` kernel: U(−l, l), `l = √(6/(fan_in+fan_out))`.
pub fn glorot_uniform<T: Float>(rng: &mut Rng, fan_in: usize, fan_out: usize) -> Vec<T> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..fan_in * fan_out)
        .map(|_| T::c(rng.gen_range(-limit..limit)))
        .collect()
}

/// Keras `Orthogonal` for a `[rows, cols]` kernel: QR of a standard normal matrix with the signs
/// of R's diagonal folded into Q, so the rows (rows ≤ cols) or columns (rows > cols) are orthonormal.
/// Modified Gram–Schmidt on the columns of the tall orientation gives the same Q as a QR.
pub fn orthogonal<T: Float>(rng: &mut Rng, rows: usize, cols: usize) -> Vec<T> {
    let (tall, short) = (rows.max(cols), rows.min(cols));
    // q holds `short` column vectors of length `tall`.
    let mut q: Vec<Vec<f64>> = (0..short)
        .map(|_| (0..tall).map(|_| StandardNormal.sample(rng)).collect())
        .collect();
    for j in 0..short {
        let (done, rest) = q.split_at_mut(j);
        let qj = &mut rest[0];
        for qp in done.iter() {
            let dot: f64 = qj.iter().zip(qp).map(|(a, b)| a * b).sum();
            qj.iter_mut().zip(qp).for_each(|(a, b)| *a -= dot * b);
        }
        // R's diagonal is the norm (positive), so the sign correction is already +1.
        let norm = qj.iter().map(|v| v * v).sum::<f64>().sqrt();
        qj.iter_mut().for_each(|v| *v /= norm);
    }
    let mut out = vec![T::zero(); rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = if rows >= cols { q[c][r] } else { q[r][c] };
            out[r * cols + c] = T::c(v);
        }
    }
    out
}
