//! Barra-like style exposures (docs/data.md, after the CNE5/USE4 descriptor definitions) from daily
//! returns, size, turnover and, where the source has them, valuation ratios.
//!
//! Time-series descriptors per stock (exponential weights `λ^k`, `λ = 0.5^{1/half-life}`,
//! k = 0 the most recent day; a window needs at least half its days with data):
//!
//! - **beta**: weighted regression `r_i = α + β·m + e` over 252 days, half-life 63; HSIGMA is
//!   the weighted std of e.
//! - **momentum** (RSTR): `Σ_k w_k ln(1 + r_{t−21−k})` over 504 days, half-life 126, rescaled
//!   by `Σ_all w / Σ_present w` so partial windows compare with full ones.
//! - **residual_volatility**: `0.74·DASTD + 0.16·CMRA + 0.10·HSIGMA` of the per-date z-scored
//!   descriptors, orthogonalized to size and beta. DASTD: weighted std of r over 252 days,
//!   half-life 42. CMRA: `max_T Z_T − min_T Z_T`, `Z_T = ln(P_t / P_{t−21T})`, T = 1..12 (the log
//!   form of Barra's cumulative range).
//! - **nonlinear_size**: size³ (winsorized, z-scored) orthogonalized to size.
//! - **liquidity**: `0.35·STOM + 0.35·STOQ + 0.30·STOA`, `STO_W = ln(21 · mean turnover over
//!   the last W days)` for W = 21, 63, 252 (suspended days count as 0), orthogonalized to size.
//! - **book_to_price** = 1/PB, **earnings_yield** = 1/PE (sources with valuations only).
//!
//! Every exposure is finally winsorized at median ± 5·MAD and z-scored per date over the listed
//! stocks ([`style_zscore`]); orthogonalization is the residual of a per-date OLS with intercept.

use rayon::prelude::*;

use super::panel::flags;

const BETA_WINDOW: usize = 252;
const BETA_HALF_LIFE: f64 = 63.0;
const MOMENTUM_WINDOW: usize = 504;
const MOMENTUM_LAG: usize = 21;
const MOMENTUM_HALF_LIFE: f64 = 126.0;
const DASTD_WINDOW: usize = 252;
const DASTD_HALF_LIFE: f64 = 42.0;
const MONTH: usize = 21;
const CMRA_MONTHS: usize = 12;
const LIQUIDITY_WINDOWS: [(usize, f64); 3] = [(21, 0.35), (63, 0.35), (252, 0.30)];
const RESVOL_WEIGHTS: [f64; 3] = [0.74, 0.16, 0.10];

/// One line per style, for `meta.json` provenance.
pub const DEFINITIONS: &str = "size: ln float market cap (or the proxy in proxies); \
beta: 252-day WLS on the market, half-life 63; momentum: RSTR 504 days, lag 21, half-life 126; \
residual_volatility: 0.74 DASTD(252, hl 42) + 0.16 CMRA(12 x 21 days, log form) + 0.10 HSIGMA, \
orthogonalized to size and beta; nonlinear_size: size^3 orthogonalized to size; \
liquidity: 0.35 STOM + 0.35 STOQ + 0.30 STOA, orthogonalized to size; book_to_price: 1/pbMRQ; \
earnings_yield: 1/peTTM; each winsorized at median +- 5 MAD and z-scored per date; \
windows need half their days with data";

const PRICE_STYLES: [&str; 6] = [
    "size",
    "beta",
    "momentum",
    "residual_volatility",
    "nonlinear_size",
    "liquidity",
];
const VALUATION_STYLES: [&str; 2] = ["book_to_price", "earnings_yield"];
const UNSUPPORTED: [&str; 2] = ["growth", "leverage"];

/// The styles computed, in `styles.npy` order.
pub fn names(with_valuation: bool) -> Vec<&'static str> {
    let mut v = PRICE_STYLES.to_vec();
    if with_valuation {
        v.extend(VALUATION_STYLES);
    }
    v
}

/// The styles of docs/data.md the data cannot support.
pub fn missing(with_valuation: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    if !with_valuation {
        v.extend(VALUATION_STYLES);
    }
    v.extend(UNSUPPORTED);
    v
}

pub struct StyleInputs<'a> {
    pub n_dates: usize,
    pub n_stocks: usize,
    /// `[N, T]` daily return, NaN where the stock did not trade.
    pub ret: &'a [f32],
    /// `[N, T]` turnover, 0 on suspended days, NaN where unlisted or unknown.
    pub turn: &'a [f32],
    /// `[T]` market return, NaN unknown.
    pub market: &'a [f64],
    /// `[T, N]` ln market cap (or proxy).
    pub log_cap: &'a [f32],
    /// `[T, N]` panel flags; styles are set on listed cells only.
    pub tradable: &'a [u8],
    /// `[T, N]` book-to-price and earnings yield.
    pub valuation: Option<(&'a [f32], &'a [f32])>,
}

/// Time-series descriptors per stock-day, before the cross-sectional steps.
const RAW: usize = 6;
const BETA: usize = 0;
const HSIGMA: usize = 1;
const RSTR: usize = 2;
const DASTD: usize = 3;
const CMRA: usize = 4;
const LIQ: usize = 5;

/// The style exposures `[T, N, K]`, K = `names(valuation.is_some()).len()`.
pub fn compute(inp: &StyleInputs) -> Vec<f32> {
    let (t_len, n) = (inp.n_dates, inp.n_stocks);
    // [N, T, RAW], stock by stock in parallel.
    let mut raw = vec![f32::NAN; n * t_len * RAW];
    raw.par_chunks_mut(t_len * RAW)
        .enumerate()
        .for_each(|(i, out)| {
            let ret: Vec<f64> = inp.ret[i * t_len..(i + 1) * t_len]
                .iter()
                .map(|&x| x as f64)
                .collect();
            let turn: Vec<f64> = inp.turn[i * t_len..(i + 1) * t_len]
                .iter()
                .map(|&x| x as f64)
                .collect();
            stock_descriptors(&ret, inp.market, &turn, out);
        });
    let k = names(inp.valuation.is_some()).len();
    let mut styles = vec![f32::NAN; t_len * n * k];
    styles
        .par_chunks_mut(n * k)
        .enumerate()
        .for_each(|(t, out)| date_styles(inp, &raw, t, out));
    styles
}

/// The cross-sectional steps of date t into `out` (`[N, K]`).
fn date_styles(inp: &StyleInputs, raw: &[f32], t: usize, out: &mut [f32]) {
    let (t_len, n) = (inp.n_dates, inp.n_stocks);
    let listed = |i: usize| inp.tradable[t * n + i] & flags::LISTED != 0;
    let column = |f: &dyn Fn(usize) -> f32| -> Vec<f32> {
        (0..n)
            .map(|i| if listed(i) { f(i) } else { f32::NAN })
            .collect()
    };
    let raw_col = |d: usize| column(&|i| raw[(i * t_len + t) * RAW + d]);
    let z = |mut v: Vec<f32>| {
        style_zscore(&mut v);
        v
    };
    let size = z(column(&|i| inp.log_cap[t * n + i]));
    let beta = z(raw_col(BETA));
    let momentum = z(raw_col(RSTR));
    let parts = [z(raw_col(DASTD)), z(raw_col(CMRA)), z(raw_col(HSIGMA))];
    let mut resvol: Vec<f32> = (0..n)
        .map(|i| {
            parts
                .iter()
                .zip(RESVOL_WEIGHTS)
                .map(|(p, w)| w * p[i] as f64)
                .sum::<f64>() as f32
        })
        .collect();
    ols_residual(&mut resvol, &[&size, &beta]);
    // Winsorize the heavy-tailed cube before the regression, as the other composites are, so
    // the final winsorization barely moves the residual off orthogonality.
    let mut nonlinear = z(size.iter().map(|s| s * s * s).collect());
    ols_residual(&mut nonlinear, &[&size]);
    let mut liquidity = z(raw_col(LIQ));
    ols_residual(&mut liquidity, &[&size]);
    let mut cols = vec![size, beta, momentum, z(resvol), z(nonlinear), z(liquidity)];
    if let Some((bp, ep)) = inp.valuation {
        cols.push(z(column(&|i| bp[t * n + i])));
        cols.push(z(column(&|i| ep[t * n + i])));
    }
    let k = cols.len();
    for (j, c) in cols.iter().enumerate() {
        for (i, &v) in c.iter().enumerate() {
            out[i * k + j] = v;
        }
    }
}

/// Replaces `y` by its residual on `[1, xs…]` (OLS over the rows where y and every x are
/// finite); rows where y is finite but some x is not become NaN. Fewer rows than unknowns, or a
/// singular design, leave no residual: every row becomes NaN.
fn ols_residual(y: &mut [f32], xs: &[&[f32]]) {
    let p = xs.len() + 1;
    let row = |i: usize| -> Option<Vec<f64>> {
        let mut r = Vec::with_capacity(p);
        r.push(1.0);
        for x in xs {
            let v = x[i] as f64;
            if !v.is_finite() {
                return None;
            }
            r.push(v);
        }
        Some(r)
    };
    let mut xtx = vec![0.0f64; p * p];
    let mut xty = vec![0.0f64; p];
    let mut rows = 0usize;
    for (i, &yi) in y.iter().enumerate() {
        let Some(r) = row(i).filter(|_| yi.is_finite()) else {
            continue;
        };
        rows += 1;
        for a in 0..p {
            xty[a] += r[a] * yi as f64;
            for b in 0..p {
                xtx[a * p + b] += r[a] * r[b];
            }
        }
    }
    let coef = if rows > p {
        solve(&mut xtx, &mut xty, p)
    } else {
        None
    };
    for (i, yi) in y.iter_mut().enumerate() {
        *yi = match (&coef, row(i)) {
            (Some(c), Some(r)) if yi.is_finite() => {
                (*yi as f64 - r.iter().zip(c).map(|(a, b)| a * b).sum::<f64>()) as f32
            }
            _ => f32::NAN,
        };
    }
}

/// Solves the p×p system `a·x = b` by Gaussian elimination with partial pivoting; `None` when
/// singular. `a` and `b` are overwritten.
fn solve(a: &mut [f64], b: &mut [f64], p: usize) -> Option<Vec<f64>> {
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for col in 0..p {
        let piv =
            (col..p).max_by(|&r, &s| a[r * p + col].abs().total_cmp(&a[s * p + col].abs()))?;
        if a[piv * p + col].abs() <= 1e-12 * scale {
            return None;
        }
        for c in 0..p {
            a.swap(col * p + c, piv * p + c);
        }
        b.swap(col, piv);
        for r in col + 1..p {
            let f = a[r * p + col] / a[col * p + col];
            for c in col..p {
                a[r * p + c] -= f * a[col * p + c];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; p];
    for r in (0..p).rev() {
        let s: f64 = (r + 1..p).map(|c| a[r * p + c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r * p + r];
    }
    Some(x)
}

/// `out[t] = Σ_{k=0}^{window−1} λ^k · x[t−k]` with `λ = 0.5^{1/half_life}` (an infinite half-life
/// gives the plain rolling sum); NaN entries and days before the start count as 0. Computed by
/// the O(T) recursion `out[t] = λ·out[t−1] + x[t] − λ^window · x[t−window]`.
pub fn ew_window_sum(x: &[f64], window: usize, half_life: f64) -> Vec<f64> {
    let lambda = 0.5f64.powf(1.0 / half_life);
    let tail = lambda.powi(window as i32);
    let v = |t: usize| if x[t].is_finite() { x[t] } else { 0.0 };
    let mut out = vec![0.0; x.len()];
    let mut s = 0.0;
    for (t, o) in out.iter_mut().enumerate() {
        s = lambda * s + v(t);
        if t >= window {
            s -= tail * v(t - window);
        }
        *o = s;
    }
    out
}

/// Writes the [`RAW`] descriptors of one stock into `out` (`[T, RAW]`, pre-filled with NaN).
/// `ret`, `market`, `turn` are the stock's series on the panel calendar.
fn stock_descriptors(ret: &[f64], market: &[f64], turn: &[f64], out: &mut [f32]) {
    let t_len = ret.len();
    let set = |out: &mut [f32], t: usize, d: usize, v: f64| {
        if v.is_finite() {
            out[t * RAW + d] = v as f32;
        }
    };
    let ind = |ok: &dyn Fn(usize) -> bool| -> Vec<f64> {
        (0..t_len).map(|t| if ok(t) { 1.0 } else { 0.0 }).collect()
    };
    let masked = |m: &[f64], f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..t_len)
            .map(|t| if m[t] > 0.0 { f(t) } else { 0.0 })
            .collect()
    };

    // Beta and HSIGMA: weighted regression on the days with both returns.
    let both = ind(&|t| ret[t].is_finite() && market[t].is_finite());
    let ew = |v: &[f64]| ew_window_sum(v, BETA_WINDOW, BETA_HALF_LIFE);
    let count = ew_window_sum(&both, BETA_WINDOW, f64::INFINITY);
    let s1 = ew(&both);
    let sx = ew(&masked(&both, &|t| market[t]));
    let sy = ew(&masked(&both, &|t| ret[t]));
    let sxx = ew(&masked(&both, &|t| market[t] * market[t]));
    let sxy = ew(&masked(&both, &|t| market[t] * ret[t]));
    let syy = ew(&masked(&both, &|t| ret[t] * ret[t]));
    for t in 0..t_len {
        if count[t] < (BETA_WINDOW / 2) as f64 {
            continue;
        }
        let (mx, my) = (sx[t] / s1[t], sy[t] / s1[t]);
        let var = sxx[t] / s1[t] - mx * mx;
        let cov = sxy[t] / s1[t] - mx * my;
        if var > 0.0 {
            let beta = cov / var;
            set(out, t, BETA, beta);
            set(
                out,
                t,
                HSIGMA,
                (syy[t] / s1[t] - my * my - beta * cov).max(0.0).sqrt(),
            );
        }
    }

    // DASTD and momentum: the days with a return.
    let has = ind(&|t| ret[t].is_finite());
    let count = ew_window_sum(&has, DASTD_WINDOW, f64::INFINITY);
    let s1 = ew_window_sum(&has, DASTD_WINDOW, DASTD_HALF_LIFE);
    let sy = ew_window_sum(ret, DASTD_WINDOW, DASTD_HALF_LIFE);
    let syy = ew_window_sum(
        &masked(&has, &|t| ret[t] * ret[t]),
        DASTD_WINDOW,
        DASTD_HALF_LIFE,
    );
    for t in 0..t_len {
        if count[t] >= (DASTD_WINDOW / 2) as f64 {
            let m = sy[t] / s1[t];
            set(out, t, DASTD, (syy[t] / s1[t] - m * m).max(0.0).sqrt());
        }
    }
    let log_ret: Vec<f64> = ret.iter().map(|r| r.ln_1p()).collect();
    let count = ew_window_sum(&has, MOMENTUM_WINDOW, f64::INFINITY);
    let sw = ew_window_sum(&has, MOMENTUM_WINDOW, MOMENTUM_HALF_LIFE);
    let sl = ew_window_sum(&log_ret, MOMENTUM_WINDOW, MOMENTUM_HALF_LIFE);
    let full = ew_window_sum(
        &vec![1.0; MOMENTUM_WINDOW],
        MOMENTUM_WINDOW,
        MOMENTUM_HALF_LIFE,
    )[MOMENTUM_WINDOW - 1];
    for t in MOMENTUM_LAG..t_len {
        let u = t - MOMENTUM_LAG;
        if count[u] >= (MOMENTUM_WINDOW / 2) as f64 {
            set(out, t, RSTR, sl[u] * full / sw[u]);
        }
    }

    // CMRA on the log price path; returns missing on suspended days leave the price flat.
    let mut log_price = vec![0.0; t_len];
    let mut acc = 0.0;
    for t in 0..t_len {
        if log_ret[t].is_finite() {
            acc += log_ret[t];
        }
        log_price[t] = acc;
    }
    // The range needs the stock listed at the window's start and half the window traded.
    let listed = ind(&|t| turn[t].is_finite());
    let span = MONTH * CMRA_MONTHS;
    let traded = ew_window_sum(&has, span, f64::INFINITY);
    for t in span..t_len {
        if listed[t - span] == 0.0 || traded[t] < (span / 2) as f64 {
            continue;
        }
        let z = (1..=CMRA_MONTHS).map(|m| log_price[t] - log_price[t - MONTH * m]);
        let (lo, hi) = z.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        set(out, t, CMRA, hi - lo);
    }

    // Liquidity from turnover over listed days (suspended = 0).
    let mut liq = vec![0.0; t_len];
    for (w, weight) in LIQUIDITY_WINDOWS {
        let days = ew_window_sum(&listed, w, f64::INFINITY);
        let sum = ew_window_sum(turn, w, f64::INFINITY);
        for t in 0..t_len {
            liq[t] += if days[t] >= (w / 2) as f64 {
                weight * (MONTH as f64 * sum[t] / days[t]).ln()
            } else {
                f64::NAN
            };
        }
    }
    for (t, v) in liq.into_iter().enumerate() {
        set(out, t, LIQ, v);
    }
}

/// The per-date style convention of docs/data.md, in place: winsorize at median ± 5·MAD, then
/// z-score (population std). Non-finite entries are excluded and left as they are; fewer than
/// two finite values, or zero spread, give all-zero exposures for the finite entries.
pub fn style_zscore(x: &mut [f32]) {
    let mut v: Vec<f64> = x
        .iter()
        .filter(|a| a.is_finite())
        .map(|&a| a as f64)
        .collect();
    if v.is_empty() {
        return;
    }
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    };
    let med = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|a| (a - med).abs()).collect();
    let mad = median(&mut dev);
    let (lo, hi) = (med - 5.0 * mad, med + 5.0 * mad);
    let clipped = |a: f32| (a as f64).clamp(lo, hi);
    let n = v.len() as f64;
    let mean = x
        .iter()
        .filter(|a| a.is_finite())
        .map(|&a| clipped(a))
        .sum::<f64>()
        / n;
    let var = x
        .iter()
        .filter(|a| a.is_finite())
        .map(|&a| (clipped(a) - mean).powi(2))
        .sum::<f64>()
        / n;
    let sd = var.sqrt();
    for a in x.iter_mut().filter(|a| a.is_finite()) {
        *a = if sd > 0.0 {
            ((clipped(*a) - mean) / sd) as f32
        } else {
            0.0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_zscore_winsorizes_then_standardizes() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0, 1000.0, f32::NAN];
        style_zscore(&mut x);
        // median 3, MAD 1 → 1000 clipped to 8; then z-score of [1,2,3,4,8].
        let c = [1.0f64, 2.0, 3.0, 4.0, 8.0];
        let m = c.iter().sum::<f64>() / 5.0;
        let sd = (c.iter().map(|a| (a - m).powi(2)).sum::<f64>() / 5.0).sqrt();
        for k in 0..5 {
            assert!((x[k] as f64 - (c[k] - m) / sd).abs() < 1e-6);
        }
        assert!(x[5].is_nan());
    }

    fn naive_ew(x: &[f64], window: usize, half_life: f64, t: usize) -> f64 {
        let lambda = 0.5f64.powf(1.0 / half_life);
        (0..window.min(t + 1))
            .map(|k| lambda.powi(k as i32) * if x[t - k].is_finite() { x[t - k] } else { 0.0 })
            .sum()
    }

    #[test]
    fn ew_window_sum_matches_the_direct_sum() {
        let x: Vec<f64> = (0..700)
            .map(|i| {
                if i % 37 == 5 {
                    f64::NAN
                } else {
                    ((i * 7919) % 101) as f64 / 50.0 - 1.0
                }
            })
            .collect();
        for (w, h) in [(252, 63.0), (21, f64::INFINITY), (504, 126.0)] {
            let fast = ew_window_sum(&x, w, h);
            for t in [0, 1, 20, 21, 251, 252, 253, 503, 504, 699] {
                let slow = naive_ew(&x, w, h, t);
                assert!(
                    (fast[t] - slow).abs() < 1e-9 * (1.0 + slow.abs()),
                    "w {w} t {t}"
                );
            }
        }
    }

    #[test]
    fn beta_is_the_weighted_regression_slope() {
        // r = 0.5 + 1.5 m + e on 300 days, e orthogonal-ish noise: compare with a direct WLS.
        let t_len = 300;
        let m: Vec<f64> = (0..t_len)
            .map(|t| ((t * 37 % 29) as f64 - 14.0) / 500.0)
            .collect();
        let e: Vec<f64> = (0..t_len)
            .map(|t| ((t * 53 % 17) as f64 - 8.0) / 2000.0)
            .collect();
        let mut r: Vec<f64> = (0..t_len).map(|t| 0.001 + 1.5 * m[t] + e[t]).collect();
        r[290] = f64::NAN;
        let turn = vec![1.0; t_len];
        let mut out = vec![f32::NAN; t_len * RAW];
        stock_descriptors(&r, &m, &turn, &mut out);
        let t = t_len - 1;
        let lambda = 0.5f64.powf(1.0 / BETA_HALF_LIFE);
        let (mut s1, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for k in 0..BETA_WINDOW {
            let u = t - k;
            if r[u].is_finite() {
                let w = lambda.powi(k as i32);
                s1 += w;
                sx += w * m[u];
                sy += w * r[u];
                sxx += w * m[u] * m[u];
                sxy += w * m[u] * r[u];
            }
        }
        let beta = (sxy / s1 - sx * sy / (s1 * s1)) / (sxx / s1 - (sx / s1).powi(2));
        assert!(
            (out[t * RAW + BETA] as f64 - beta).abs() < 1e-5,
            "{} vs {beta}",
            out[t * RAW + BETA]
        );
        // Too little history for a beta before day 126.
        assert!(out[100 * RAW + BETA].is_nan());
        // Constant turnover 1: every STO_W = ln 21.
        let liq = out[t * RAW + LIQ] as f64;
        assert!((liq - (21.0f64).ln()).abs() < 1e-5);
    }

    #[test]
    fn ols_residual_removes_the_regressor() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, f32::NAN];
        let mut y = [3.0f32, 5.0, 7.5, 9.0, 11.0, 2.0];
        ols_residual(&mut y, &[&x]);
        let dot: f32 = y[..5].iter().zip(&x).map(|(a, b)| a * b).sum();
        let sum: f32 = y[..5].iter().sum();
        assert!(dot.abs() < 1e-4 && sum.abs() < 1e-4);
        assert!(y[5].is_nan());
    }
}
