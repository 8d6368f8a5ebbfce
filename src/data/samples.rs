//! Samples drawn from a panel (docs/data.md): the per-date universe, labels, and picture gathering.
//!
//! A sample is a (date t, stock i) pair. Its picture is `X[f, k] = features[t−29+k][i][f]`
//! (15 features × 30 days, oldest first), its label `vwap_{t+11} / vwap_{t+1} − 1`, z-scored
//! across the date's universe. Everything reads the mapped panel in place.

use std::ops::Range;

use rayon::prelude::*;

use super::panel::{flags, PanelView};
use crate::error::{Error, Result};

pub const PICTURE_DAYS: usize = crate::ops::kernel_consts::PICTURE_DAYS;
pub const N_FEATURES: usize = crate::ops::kernel_consts::PICTURE_FEATURES;
/// The label spans `vwap_{t+1} → vwap_{t+HORIZON}`.
pub const HORIZON: usize = 11;
/// Floats per picture.
pub const PICTURE_LEN: usize = N_FEATURES * PICTURE_DAYS;

/// Raw labels `[T, N]`: `vwap_{t+11} / vwap_{t+1} − 1`, NaN where either price is missing,
/// non-positive, or beyond the panel's end.
pub fn raw_labels(p: PanelView) -> Vec<f32> {
    let (t_len, n) = (p.n_dates, p.n_stocks);
    let mut out = vec![f32::NAN; t_len * n];
    for t in 0..t_len.saturating_sub(HORIZON) {
        for i in 0..n {
            let (v1, v11) = (p.vwap(t + 1, i) as f64, p.vwap(t + HORIZON, i) as f64);
            if v1 > 0.0 && v11.is_finite() && v1.is_finite() {
                out[t * n + i] = (v11 / v1 - 1.0) as f32;
            }
        }
    }
    out
}

/// Which universe of docs/data.md: training samples, or the IC-evaluation universe, which also
/// drops stocks whose t+1 open is at the down-limit (they cannot be sold into the portfolio's
/// rebalance either way, and would bias the IC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Universe {
    Train,
    Eval,
}

/// Why candidate (date, stock) pairs were left out; each pair counts under its first reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    pub not_listed: usize,
    /// Listed but outside the panel's point-in-time universe (e.g. not in CSI300) at t.
    pub outside_universe: usize,
    pub no_label: usize,
    pub st: usize,
    /// Suspended at t or t+1.
    pub suspended: usize,
    pub limit_up_next: usize,
    pub limit_down_next: usize,
    /// Fewer than 30 listed, unsuspended days in t−29..t.
    pub short_history: usize,
    /// Picture holds a non-finite value (dropped, not imputed).
    pub nonfinite: usize,
    /// Whole dates left out because fewer than 2 stocks (or no label spread) remained.
    pub thin_dates: usize,
}

impl Exclusions {
    pub fn add(&mut self, o: &Exclusions) {
        self.not_listed += o.not_listed;
        self.outside_universe += o.outside_universe;
        self.no_label += o.no_label;
        self.st += o.st;
        self.suspended += o.suspended;
        self.limit_up_next += o.limit_up_next;
        self.limit_down_next += o.limit_down_next;
        self.short_history += o.short_history;
        self.nonfinite += o.nonfinite;
        self.thin_dates += o.thin_dates;
    }
}

impl std::fmt::Display for Exclusions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not listed {}, outside universe {}, no label {}, ST {}, suspended at t/t+1 {}, limit-up at t+1 {}, \
             limit-down at t+1 {}, under 30 days of history {}, non-finite picture {}, dates with < 2 stocks {}",
            self.not_listed,
            self.outside_universe,
            self.no_label,
            self.st,
            self.suspended,
            self.limit_up_next,
            self.limit_down_next,
            self.short_history,
            self.nonfinite,
            self.thin_dates
        )
    }
}

/// The stocks of date `t` that pass the universe rules (docs/data.md) for `universe`, in stock order. `labels` is
/// [`raw_labels`]. Exclusions are added to `excl`.
pub fn date_universe(
    p: PanelView,
    labels: &[f32],
    t: usize,
    universe: Universe,
    excl: &mut Exclusions,
) -> Vec<u32> {
    let n = p.n_stocks;
    let mut out = Vec::new();
    for i in 0..n {
        let f = p.flags(t, i);
        if f & flags::LISTED == 0 {
            excl.not_listed += 1;
        } else if f & flags::OUTSIDE_UNIVERSE != 0 {
            excl.outside_universe += 1;
        } else if !labels[t * n + i].is_finite() {
            excl.no_label += 1;
        } else if f & flags::ST != 0 {
            excl.st += 1;
        } else if (f | p.flags(t + 1, i)) & flags::SUSPENDED != 0 {
            // A finite label implies t + HORIZON < T, so t + 1 is in the panel.
            excl.suspended += 1;
        } else if p.flags(t + 1, i) & flags::LIMIT_UP_OPEN != 0 {
            excl.limit_up_next += 1;
        } else if universe == Universe::Eval && p.flags(t + 1, i) & flags::LIMIT_DOWN_OPEN != 0 {
            excl.limit_down_next += 1;
        } else if !full_history(p, t, i) {
            excl.short_history += 1;
        } else if !picture_finite(p, t, i) {
            excl.nonfinite += 1;
        } else {
            out.push(i as u32);
        }
    }
    out
}

fn full_history(p: PanelView, t: usize, i: usize) -> bool {
    t + 1 >= PICTURE_DAYS
        && (t + 1 - PICTURE_DAYS..=t)
            .all(|u| p.flags(u, i) & (flags::LISTED | flags::SUSPENDED) == flags::LISTED)
}

fn picture_finite(p: PanelView, t: usize, i: usize) -> bool {
    (t + 1 - PICTURE_DAYS..=t).all(|u| {
        let at = (u * p.n_stocks + i) * N_FEATURES;
        p.features[at..at + N_FEATURES]
            .iter()
            .all(|x| x.is_finite())
    })
}

/// The samples of a date range: per date, the universe's stocks and their labels.
#[derive(Debug, Clone)]
pub struct SampleIndex {
    pub universe: Universe,
    /// Panel date indices that kept at least 2 samples, increasing.
    pub dates: Vec<u32>,
    /// Stock indices per kept date, increasing.
    pub per_date: Vec<Vec<u32>>,
    /// Raw labels (docs/data.md) per kept date, aligned with `per_date`.
    pub labels_raw: Vec<Vec<f32>>,
    /// Labels z-scored across the date's universe (mean 0, population std 1).
    pub labels_z: Vec<Vec<f32>>,
    /// Pictures dropped for holding a non-finite value (= `excluded.nonfinite`).
    pub dropped_nonfinite: usize,
    pub excluded: Exclusions,
}

impl SampleIndex {
    /// Training samples of dates `range.start, range.start + every, …` (< `range.end`).
    pub fn build(p: PanelView, range: Range<usize>, every: usize) -> Result<SampleIndex> {
        Self::build_for(p, range, every, Universe::Train)
    }

    /// As [`SampleIndex::build`] for the chosen universe.
    pub fn build_for(
        p: PanelView,
        range: Range<usize>,
        every: usize,
        universe: Universe,
    ) -> Result<SampleIndex> {
        if every == 0 {
            return Err(Error::Config(
                "sample every 0 dates: the step must be at least 1".into(),
            ));
        }
        if range.start >= range.end || range.end > p.n_dates {
            return Err(Error::Data(format!(
                "date range {}..{} is empty or outside the panel's {} dates ({}..{})",
                range.start,
                range.end,
                p.n_dates,
                p.dates.first().map_or("", String::as_str),
                p.dates.last().map_or("", String::as_str)
            )));
        }
        let labels = raw_labels(p);
        let ts: Vec<usize> = range.clone().step_by(every).collect();
        let per: Vec<(usize, Vec<u32>, Exclusions)> = ts
            .par_iter()
            .map(|&t| {
                let mut ex = Exclusions::default();
                let stocks = date_universe(p, &labels, t, universe, &mut ex);
                (t, stocks, ex)
            })
            .collect();
        let mut index = SampleIndex {
            universe,
            dates: Vec::new(),
            per_date: Vec::new(),
            labels_raw: Vec::new(),
            labels_z: Vec::new(),
            dropped_nonfinite: 0,
            excluded: Exclusions::default(),
        };
        for (t, stocks, ex) in per {
            index.excluded.add(&ex);
            let raw: Vec<f32> = stocks
                .iter()
                .map(|&i| labels[t * p.n_stocks + i as usize])
                .collect();
            match zscore(&raw) {
                Some(z) if stocks.len() >= 2 => {
                    index.dates.push(t as u32);
                    index.per_date.push(stocks);
                    index.labels_raw.push(raw);
                    index.labels_z.push(z);
                }
                _ => index.excluded.thin_dates += 1,
            }
        }
        index.dropped_nonfinite = index.excluded.nonfinite;
        if index.dates.is_empty() {
            let name = |t: usize| p.dates.get(t).map_or("?", String::as_str);
            return Err(Error::Data(format!(
                "no samples in dates {}..={} (indices {}..{}, every {every}): {}. \
                 A date needs 30 days of history before it and 11 after it",
                name(range.start),
                name(range.end - 1),
                range.start,
                range.end,
                index.excluded
            )));
        }
        Ok(index)
    }

    pub fn n_samples(&self) -> usize {
        self.per_date.iter().map(Vec::len).sum()
    }

    /// All samples as (date, stock) pairs, date-major.
    pub fn pairs(&self) -> Vec<(u32, u32)> {
        self.dates
            .iter()
            .zip(&self.per_date)
            .flat_map(|(&t, s)| s.iter().map(move |&i| (t, i)))
            .collect()
    }
}

/// `(x − mean) / std` (population std), or `None` when the spread is zero or x is empty.
fn zscore(x: &[f32]) -> Option<Vec<f32>> {
    let n = x.len() as f64;
    let mean = x.iter().map(|&a| a as f64).sum::<f64>() / n;
    let sd = (x.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    (sd > 0.0).then(|| x.iter().map(|&a| ((a as f64 - mean) / sd) as f32).collect())
}

/// Writes the pictures of `samples` into `out` as `[B, 15, 30]`:
/// `out[b][f][k] = features[t−29+k][i][f]` for sample b = (t, i), straight from the panel.
/// Panics if a sample has `t < 29` or lies outside the panel (a programming error: samples come
/// from a [`SampleIndex`]).
pub fn gather_pictures<T: From<f32> + Send>(p: PanelView, samples: &[(u32, u32)], out: &mut [T]) {
    assert_eq!(
        out.len(),
        samples.len() * PICTURE_LEN,
        "gather_pictures: out has the wrong size"
    );
    out.par_chunks_mut(PICTURE_LEN)
        .zip(samples)
        .for_each(|(pic, &(t, i))| {
            let (t, i) = (t as usize, i as usize);
            assert!(
                t + 1 >= PICTURE_DAYS && t < p.n_dates && i < p.n_stocks,
                "sample ({t}, {i}) has no picture"
            );
            for k in 0..PICTURE_DAYS {
                let row = &p.features[((t + 1 - PICTURE_DAYS + k) * p.n_stocks + i) * N_FEATURES..]
                    [..N_FEATURES];
                for (f, &x) in row.iter().enumerate() {
                    pic[f * PICTURE_DAYS + k] = T::from(x);
                }
            }
        });
}

/// Writes the style exposures of `samples` into `out` as `[B, K]`.
pub fn gather_styles(p: PanelView, samples: &[(u32, u32)], out: &mut [f32]) {
    let k = p.n_styles;
    assert_eq!(
        out.len(),
        samples.len() * k,
        "gather_styles: out has the wrong size"
    );
    for (row, &(t, i)) in out.chunks_mut(k.max(1)).zip(samples) {
        let at = (t as usize * p.n_stocks + i as usize) * k;
        row.copy_from_slice(&p.styles[at..at + k]);
    }
}

/// Ranks 1..n of `x`, ties sharing the average of the ranks they span (x must be finite).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]] == x[order[start]] {
            end += 1;
        }
        // Positions start..end hold equal values: ranks start+1..=end, mean (start+1+end)/2.
        let r = (start + 1 + end) as f64 / 2.0;
        for &o in &order[start..end] {
            ranks[o] = r;
        }
        start = end;
    }
    ranks
}

/// Spearman rank correlation: the Pearson correlation of the average ranks of `a` and `b`
/// (ties get the mean of the ranks they span). Pairs where either value is non-finite are left
/// out. Returns NaN when fewer than 2 pairs remain or either side is constant (undefined).
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman: length mismatch");
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .iter()
        .zip(b)
        .filter(|(u, v)| u.is_finite() && v.is_finite())
        .map(|(&u, &v)| (u as f64, v as f64))
        .unzip();
    if x.len() < 2 {
        return f64::NAN;
    }
    let (rx, ry) = (average_ranks(&x), average_ranks(&y));
    let m = (x.len() + 1) as f64 / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (u, v) in rx.iter().zip(&ry) {
        sxy += (u - m) * (v - m);
        sxx += (u - m) * (u - m);
        syy += (v - m) * (v - m);
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    sxy / (sxx * syy).sqrt()
}
