//! Batches of whole dates (docs/training.md): dates shuffled each epoch and packed into batches of about
//! `batch_size` samples; a date larger than the batch is split into random chunks of about the
//! batch size, each chunk still one date group (so v2.2 regresses within it).

use crate::util::rng::Rng;
use rand::seq::SliceRandom;

/// Rows `rows` (positions in the date's sample list) of the date at position `date` of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct DateChunk {
    pub date: usize,
    pub rows: Vec<usize>,
}

/// One epoch's batches. `sizes[d]` is the number of samples of date position d.
pub fn plan_epoch(sizes: &[usize], batch_size: usize, rng: &mut Rng) -> Vec<Vec<DateChunk>> {
    let mut order: Vec<usize> = (0..sizes.len()).filter(|&d| sizes[d] > 0).collect();
    order.shuffle(rng);
    let mut chunks = Vec::new();
    for d in order {
        let n = sizes[d];
        if n <= batch_size {
            chunks.push(DateChunk {
                date: d,
                rows: (0..n).collect(),
            });
            continue;
        }
        let mut rows: Vec<usize> = (0..n).collect();
        rows.shuffle(rng);
        let parts = n.div_ceil(batch_size);
        for p in 0..parts {
            let mut part = rows[p * n / parts..(p + 1) * n / parts].to_vec();
            part.sort_unstable();
            chunks.push(DateChunk {
                date: d,
                rows: part,
            });
        }
    }
    pack(chunks, batch_size)
}

/// Validation batches: whole dates in date order, packed the same way (no shuffling).
pub fn plan_in_order(sizes: &[usize], batch_size: usize) -> Vec<Vec<DateChunk>> {
    let chunks = (0..sizes.len())
        .filter(|&d| sizes[d] > 0)
        .map(|d| DateChunk {
            date: d,
            rows: (0..sizes[d]).collect(),
        })
        .collect();
    pack(chunks, batch_size)
}

/// Packs chunks in order into batches, closing a batch once it holds `batch_size` samples.
fn pack(chunks: Vec<DateChunk>, batch_size: usize) -> Vec<Vec<DateChunk>> {
    let mut batches = Vec::new();
    let mut current: Vec<DateChunk> = Vec::new();
    let mut filled = 0;
    for c in chunks {
        filled += c.rows.len();
        current.push(c);
        if filled >= batch_size {
            batches.push(std::mem::take(&mut current));
            filled = 0;
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}
