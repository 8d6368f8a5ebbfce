//! Per-picture input normalisation (docs/models.md#input-normalisation), an option of every
//! model (`--input-norm picture`). A picture mixes price levels of 3 and 300 CNY and volumes of
//! 1e4 and 1e9, and the scale-dependent feature ops (stddev, cov, mean, decaylinear) then mostly
//! encode the stock's level, which BatchNorm over a batch of stocks cannot undo. Each picture
//! `[15, 30]` is rescaled on its own:
//!
//! - open, close, high, low, vwap: `x / close[29]`, the last close (so the last close is 1);
//! - volume, turn, free_turn, close/free_turn, open/turn, volume/low: `x / mean(x over the 30
//!   days)` (0 where that mean is not positive, i.e. the series is all zero);
//! - return1 and the scale-free ratios (vwap/high, low/high, vwap/close): unchanged.
//!
//! The pictures are data, so the op has no backward.

use crate::ops::kernel_consts::{
    CLOSE_FEATURE, NORM_BY_LAST_CLOSE, NORM_BY_WINDOW_MEAN, PICTURE_DAYS, PICTURE_FEATURES,
};
use crate::util::float::Float;

/// out `[B, 15, 30]` = the pictures inp `[B, 15, 30]`, each rescaled as the module says.
pub fn normalize_pictures<T: Float>(out: &mut [T], inp: &[T], b: usize) {
    let (f_n, d) = (PICTURE_FEATURES, PICTURE_DAYS);
    assert!(
        inp.len() == b * f_n * d && out.len() == inp.len(),
        "normalize_pictures: inp holds {} and out {} values, b·15·30 = {}",
        inp.len(),
        out.len(),
        b * f_n * d
    );
    for (pic, o) in inp.chunks_exact(f_n * d).zip(out.chunks_exact_mut(f_n * d)) {
        let last_close = pic[CLOSE_FEATURE * d + d - 1];
        for f in 0..f_n {
            let (x, y) = (&pic[f * d..][..d], &mut o[f * d..][..d]);
            let scale = if NORM_BY_LAST_CLOSE & (1 << f) != 0 {
                last_close
            } else if NORM_BY_WINDOW_MEAN & (1 << f) != 0 {
                x.iter().fold(T::zero(), |s, &v| s + v) / T::c(d as f64)
            } else {
                T::one()
            };
            for (y, &x) in y.iter_mut().zip(x) {
                *y = if scale > T::zero() {
                    x / scale
                } else {
                    T::zero()
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_is_scaled_as_documented() {
        let (f_n, d) = (PICTURE_FEATURES, PICTURE_DAYS);
        let mut pic = vec![0.0f64; f_n * d];
        for f in 0..f_n {
            for k in 0..d {
                pic[f * d + k] = (f + 1) as f64 * (10.0 + k as f64);
            }
        }
        // Feature 11 (volume/low) all zero: its mean is 0 and it stays 0.
        pic[11 * d..12 * d].iter_mut().for_each(|v| *v = 0.0);
        let mut out = vec![0.0; pic.len()];
        normalize_pictures(&mut out, &pic, 1);
        let last_close = pic[2 * d + d - 1];
        for f in 0..f_n {
            let mean = pic[f * d..(f + 1) * d].iter().sum::<f64>() / d as f64;
            for k in 0..d {
                let x = pic[f * d + k];
                let want = match f {
                    1 | 2 | 3 | 4 | 6 => x / last_close,
                    11 => 0.0,
                    5 | 7..=10 => x / mean,
                    _ => x,
                };
                assert!((out[f * d + k] - want).abs() < 1e-12, "feature {f} day {k}");
            }
        }
        assert_eq!(out[2 * d + d - 1], 1.0, "the last close becomes 1");
    }

    #[test]
    fn masks_name_the_documented_features() {
        let bits = |m: u32| {
            (0..15)
                .filter(|f| m & (1 << f) != 0)
                .collect::<Vec<usize>>()
        };
        assert_eq!(bits(NORM_BY_LAST_CLOSE), vec![1, 2, 3, 4, 6]);
        assert_eq!(bits(NORM_BY_WINDOW_MEAN), vec![5, 7, 8, 9, 10, 11]);
        assert_eq!(
            crate::data::features::FEATURE_NAMES[CLOSE_FEATURE],
            "close",
            "CLOSE_FEATURE"
        );
    }
}
