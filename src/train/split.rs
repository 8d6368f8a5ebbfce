//! Chronological train/validation split with the purge gap of docs/training.md.
//!
//! A sample at date t carries the label window t+1..=t+HORIZON. A part is purged from the next
//! one when its last sample date t satisfies `t + HORIZON < first date of the next part`, so no
//! label of one part uses a price from a date that the next part trains, validates or predicts on.

use crate::data::samples::HORIZON;
use crate::{Error, Result};
use std::ops::Range;

/// In-sample sample dates `[start, end)` (panel date indices) split `train:val` chronologically,
/// with the validation part starting `HORIZON + 1` dates after the last training date.
pub fn split_train_val(
    start: usize,
    end: usize,
    train: usize,
    val: usize,
) -> Result<(Range<usize>, Range<usize>)> {
    if train == 0 || val == 0 {
        return Err(Error::Config(format!(
            "--split {train}:{val}: both parts must be positive"
        )));
    }
    let span = end.saturating_sub(start);
    if span < 2 * (HORIZON + 1) + 2 {
        return Err(Error::Data(format!(
            "in-sample window of {span} dates is too short to split {train}:{val} with a {HORIZON}-day purge gap"
        )));
    }
    let usable = span - HORIZON;
    // In u128: a ratio of any two usize counts neither overflows nor leaves validation empty.
    let share = usable as u128 * train as u128 / (train as u128 + val as u128);
    let train_len = (share as usize).clamp(1, usable - 1);
    let train_range = start..start + train_len;
    let val_start = train_range.end - 1 + HORIZON + 1;
    Ok((train_range, val_start..end))
}

/// The last in-sample date index (exclusive) allowed before predicting from `first_prediction`.
pub fn insample_end(first_prediction: usize) -> usize {
    first_prediction.saturating_sub(HORIZON)
}
