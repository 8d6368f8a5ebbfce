//! Deterministic reductions across samples (weight gradients, BN statistics).
//!
//! Work is cut into chunks of a constant size — never one that depends on the thread count —
//! each chunk sums its own rows into a private partial, and the partials are added in chunk
//! order. Float addition is not associative, so this is what makes a result bit-identical
//! whether rayon runs the chunks on one thread or many.

use std::ops::Range;

use rayon::prelude::*;

use crate::util::float::Float;

/// Adds each partial into `dsts`, one partial after another in the order given. A partial is
/// the concatenation of one slot per destination (its length is the sum of theirs).
pub(crate) fn add_in_order<T: Float>(dsts: &mut [&mut [T]], partials: &[Vec<T>]) {
    let width: usize = dsts.iter().map(|d| d.len()).sum();
    for p in partials {
        assert_eq!(p.len(), width, "add_in_order: partial width mismatch");
        let mut rest = p.as_slice();
        for d in dsts.iter_mut() {
            let (head, tail) = rest.split_at(d.len());
            for (a, &v) in d.iter_mut().zip(head) {
                *a += v;
            }
            rest = tail;
        }
    }
}

/// `Σ` over `0..n` of a per-item contribution of width `width`: `f(range, partial)` adds the
/// contribution of the items in `range` into a zeroed `partial`; ranges are fixed chunks of
/// `chunk` items, summed in order.
pub(crate) fn sum_over_chunks<T: Float>(
    n: usize,
    chunk: usize,
    width: usize,
    f: impl Fn(Range<usize>, &mut [T]) + Sync,
) -> Vec<T> {
    let partials: Vec<Vec<T>> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|k| {
            let mut p = vec![T::zero(); width];
            f(k * chunk..((k + 1) * chunk).min(n), &mut p);
            p
        })
        .collect();
    let mut sum = vec![T::zero(); width];
    add_in_order(&mut [&mut sum], &partials);
    sum
}

/// `acc[j] += Σ_r m[r, j]` for a row-major `rows × cols` matrix, rows in order.
pub(crate) fn add_column_sums<T: Float>(acc: &mut [T], m: &[T], rows: usize, cols: usize) {
    assert_eq!(acc.len(), cols, "add_column_sums: acc length");
    assert_eq!(m.len(), rows * cols, "add_column_sums: matrix length");
    for row in m.chunks_exact(cols) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}
