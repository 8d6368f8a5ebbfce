//! A synthetic A-share market with a planted, learnable alpha (docs/data.md, `alphanet synth`).
//!
//! Everything is drawn from `crate::util::rng::stream(seed, "synth/…")`, so a seed fixes every byte.
//!
//! **Stocks.** Codes `SH600000…` (50%), `SZ000001…` (30%), `SZ300001…` (20%), in code order.
//! Per stock: industry uniform over 10; float shares log-normal (median 1e9, ~1e8–1e10), free
//! float 0.6 × float, total shares 1–1.5 × float; initial price log-normal (median 15 CNY,
//! clamped to 3–120); β ~ N(1, 0.3) clamped to [0.2, 2]; idiosyncratic vol σ_i ~ U[1.2%, 3%];
//! base turnover log-uniform 0.5%–5% of float per day.
//!
//! **Returns.** Market `m_τ ~ N(3e-4, 1.2%)`, industry `ind_{k,τ} ~ N(0, 0.6%)`, and
//!
//! `r_{i,τ} = β_i m_τ + ind_{k,τ} + κ σ_i · mean(s_{i,τ−10..τ−1}) − λ · size_z_{i,τ−1} + σ_i ε + J`
//!
//! with κ = [`KAPPA`], λ = [`LAMBDA`], ε ~ N(0, 1), and a news jump J (probability
//! [`JUMP_PROB`] a day, ±U[5%, 20%]) that makes limit-hitting opens happen. Close, open, high and
//! low are exchange prices (rounded to 0.01) clamped to the daily limit of
//! [`super::limits::limit_ratio`] (ST ±5%; ChiNext ±20% only from 2020-08-24, as on the exchange).
//! The open gaps by `J + 0.35·(r − J) + 0.3σ·N(0,1)` (partly anticipating the day), high/low
//! extend beyond open/close by `exp(0.5σ|N(0,1)|)`, vwap is a random blend of (open+close)/2 and
//! (high+low)/2. Raw and adjusted prices coincide (no corporate actions).
//!
//! **Volume.** `ln V = ln(float · base_turn) + u + 0.3 · γ · clamp(r/σ, ±3)`, where u is AR(1)
//! (φ 0.7, innovation sd 0.25) and γ an AR(1) loading (φ 0.95, stationary sd 1), so the 10-day
//! corr(close, volume) wanders across stocks and time. Volume is rounded to lots of 100 shares
//! and capped at half the free float (the clamp and cap keep limit days from 300% turnover).
//!
//! **Planted signal** ([`planted_signal`]), computed from the 15×30 picture of (t, i) only:
//! `s = tanh(2·corr(close, volume over t−9..t)) − 0.5·tanh(ret10 / (sd30·√10))`, with
//! `ret10 = close_t / close_{t−9} − 1` and sd30 the population std of return1 over t−29..t; 0 when
//! any of those values is missing. It drives returns 1–10 days later through the κ term.
//!
//! **Size.** `size.npy = ln(close × total shares)`; the size style is that, winsorized and
//! z-scored per date over listed stocks (docs/data.md), and the λ term makes small caps drift up:
//! a style effect the neutralized loss of v2.2 should strip.
//!
//! With κ = 0.16 and λ = 6e-4 the default market (300 × 700, seed 7) has an oracle RankIC of
//! about 0.20 (seeds 1–5: 0.19–0.21), the planted signal s_t alone about 0.18, and −size alone
//! about 0.09.
//!
//! **Realism.** 10% of stocks list at a uniform date in the first half (before it: NaN
//! features/prices/styles, flags 0, industry −1); suspensions start with probability 0.002 a
//! day and last 1–20 days (flag SUSPENDED, volume 0, flat prices, NaN features); 3% of stocks
//! are ST for one spell of 60–250 days; LIMIT_UP_OPEN/LIMIT_DOWN_OPEN when the open sits at the
//! limit; a share 1e-4 of feature cells is set to NaN at random after the simulation.
//!
//! **Styles** (K = 3): "size", "beta" (true β), "volatility" (true σ_i), each winsorized and
//! z-scored per date over listed stocks. The other Barra styles are listed as missing.
//!
//! **Benchmark** (`index.npy`, named [`BENCHMARK_NAME`]): the top 30% of listed, unsuspended
//! stocks by market cap, reviewed every 60 trading days, weighted daily by market cap.
//!
//! **Oracle.** `oracle[t,i]` = the part of E[label_t] known at t: the κ terms of days t+2..t+11
//! whose s is already known, `κσ_i/10 · Σ_{u=t−8..t} (u−t+9)·s_u`, plus `−10λ·size_z_t` and the
//! market drift `10·β_i·3e-4`; NaN where the label is unknown. `meta.oracle.rank_ic_mean` is its
//! mean daily Spearman correlation with the raw label over the evaluation universe of docs/data.md.

use std::path::Path;

use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

use super::calendar::{format_date, parse_date, weekday};
use super::features::{feature_row, FEATURE_NAMES};
use super::limits::{limit_prices, limit_ratio, open_limit_flags, round_price};
use super::panel::{
    flags, write_panel, BenchmarkMeta, OracleMeta, PanelArrays, PanelMeta, FORMAT_VERSION,
    PRICE_FIELDS,
};
use super::samples::{spearman, SampleIndex, Universe, HORIZON, N_FEATURES, PICTURE_DAYS};
use super::styles::style_zscore;
use crate::error::{Error, Result};
use crate::util::rng::{stream, Rng};

/// Strength of the planted signal, in units of the stock's idiosyncratic vol per day.
pub const KAPPA: f64 = 0.16;
/// Daily return drift per unit of size z-score (small caps outperform).
pub const LAMBDA: f64 = 6e-4;
pub const JUMP_PROB: f64 = 0.004;

const FIRST_DATE: &str = "2016-01-04";
const MARKET_MEAN: f64 = 3e-4;
const MARKET_SD: f64 = 0.012;
const INDUSTRY_SD: f64 = 0.006;
const VOL_AR: f64 = 0.7;
const VOL_AR_SD: f64 = 0.25;
const GAMMA_AR: f64 = 0.95;
const VOL_LOADING: f64 = 0.3;
const SUSPEND_PROB: f64 = 0.002;
const SUSPEND_MAX_DAYS: usize = 20;
const ST_SHARE: f64 = 0.03;
const LATE_LISTING_SHARE: f64 = 0.10;
const NAN_SHARE: f64 = 1e-4;
/// Volume cap as a share of free float (keeps free-float turnover under 50%).
const MAX_TURN: f64 = 0.5;
const MAX_STOCKS: usize = 10_000;
/// Fewest days that leave a date with both a full picture and a label.
const MIN_DAYS: usize = PICTURE_DAYS + HORIZON + 10;
/// The synthetic benchmark of `index.npy`: its name, the share of stocks it holds, and how
/// often its members are reviewed (trading days).
pub const BENCHMARK_NAME: &str = "synth_top30";
const BENCHMARK_SHARE: f64 = 0.3;
const BENCHMARK_RECONSTITUTE: usize = 60;

pub const INDUSTRY_NAMES: [&str; 10] = [
    "Banks",
    "Real Estate",
    "Pharmaceuticals",
    "Electronics",
    "Machinery",
    "Chemicals",
    "Food & Beverage",
    "Utilities",
    "Computers",
    "Autos",
];
pub const STYLE_NAMES: [&str; 3] = ["size", "beta", "volatility"];
const MISSING_STYLES: [&str; 7] = [
    "momentum",
    "nonlinear_size",
    "book_to_price",
    "liquidity",
    "earnings_yield",
    "growth",
    "leverage",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthConfig {
    pub stocks: usize,
    pub days: usize,
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            stocks: 300,
            days: 700,
            seed: 7,
        }
    }
}

impl SynthConfig {
    pub fn validate(&self) -> Result<()> {
        if !(10..=MAX_STOCKS).contains(&self.stocks) {
            return Err(Error::Config(format!(
                "--stocks {}: the synthetic market needs 10..={MAX_STOCKS} stocks",
                self.stocks
            )));
        }
        if self.days < MIN_DAYS {
            return Err(Error::Config(format!(
                "--days {}: at least {MIN_DAYS} days are needed (30 of picture, 11 of label, some to spare)",
                self.days
            )));
        }
        Ok(())
    }
}

fn normal(rng: &mut Rng) -> f64 {
    StandardNormal.sample(rng)
}

struct Stock {
    code: String,
    industry: usize,
    float_shares: f64,
    free_float: f64,
    total_shares: f64,
    ipo_price: f64,
    beta: f64,
    sigma: f64,
    base_turn: f64,
    list_day: usize,
    st: std::ops::Range<usize>,
}

fn draw_stocks(cfg: &SynthConfig) -> Vec<Stock> {
    let mut rng = stream(cfg.seed, "synth/stocks");
    let mut events = stream(cfg.seed, "synth/events");
    let n = cfg.stocks;
    let n_sh = n / 2;
    let n_sz = n * 3 / 10;
    (0..n)
        .map(|i| {
            let code = if i < n_sh {
                format!("SH{:06}", 600_000 + i)
            } else if i < n_sh + n_sz {
                format!("SZ{:06}", 1 + i - n_sh)
            } else {
                format!("SZ{:06}", 300_001 + i - n_sh - n_sz)
            };
            let float_shares = (1e9f64.ln() + 0.7 * normal(&mut rng))
                .exp()
                .clamp(1e8, 1e10);
            let late = events.gen::<f64>() < LATE_LISTING_SHARE;
            let list_day = if late {
                events.gen_range(1..cfg.days / 2)
            } else {
                0
            };
            let st = if events.gen::<f64>() < ST_SHARE {
                let start = events.gen_range(0..cfg.days);
                start..(start + events.gen_range(60..=250)).min(cfg.days)
            } else {
                0..0
            };
            Stock {
                code,
                industry: rng.gen_range(0..INDUSTRY_NAMES.len()),
                float_shares,
                free_float: 0.6 * float_shares,
                total_shares: float_shares * rng.gen_range(1.0..1.5),
                ipo_price: (15f64.ln() + 0.6 * normal(&mut rng))
                    .exp()
                    .clamp(5.0, 120.0),
                beta: (1.0 + 0.3 * normal(&mut rng)).clamp(0.2, 2.0),
                sigma: rng.gen_range(0.012..0.03),
                base_turn: (0.005f64.ln() + rng.gen::<f64>() * 10f64.ln()).exp(),
                list_day,
                st,
            }
        })
        .collect()
}

/// Mon–Fri dates from 2016-01-04.
fn business_days(n: usize) -> Vec<String> {
    let first = parse_date(FIRST_DATE).unwrap_or_default();
    (first..)
        .filter(|&d| weekday(d) < 5)
        .take(n)
        .map(format_date)
        .collect()
}

/// Per-stock state carried from day to day.
#[derive(Clone, Copy)]
struct State {
    prev_close: f64,
    vol_ar: f64,
    gamma: f64,
    suspended_left: usize,
}

/// Pearson correlation with the degenerate-window rule of docs/features.md (0 when either variance is
/// below 1e-12·(1 + mean²)).
fn corr(x: &[f64], y: &[f64]) -> f64 {
    let d = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / d, y.iter().sum::<f64>() / d);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx / d < 1e-12 * (1.0 + mx * mx) || syy / d < 1e-12 * (1.0 + my * my) {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

/// The planted signal of (t, i) from the panel's features `[T, N, 15]` (see the module doc);
/// 0 when t < 29 or a needed value is not finite.
pub fn planted_signal(features: &[f32], n_stocks: usize, t: usize, i: usize) -> f64 {
    if t + 1 < PICTURE_DAYS {
        return 0.0;
    }
    let at = |u: usize, f: usize| features[(u * n_stocks + i) * N_FEATURES + f] as f64;
    let (close_f, volume_f) = (2, 5);
    let close: [f64; 10] = std::array::from_fn(|k| at(t - 9 + k, close_f));
    let volume: [f64; 10] = std::array::from_fn(|k| at(t - 9 + k, volume_f));
    let ret1: [f64; PICTURE_DAYS] = std::array::from_fn(|k| at(t + 1 - PICTURE_DAYS + k, 0));
    if !close
        .iter()
        .chain(&volume)
        .chain(&ret1)
        .all(|x| x.is_finite())
        || close[0] <= 0.0
    {
        return 0.0;
    }
    let ret10 = close[9] / close[0] - 1.0;
    let mean1 = ret1.iter().sum::<f64>() / ret1.len() as f64;
    let sd30 = (ret1.iter().map(|r| (r - mean1).powi(2)).sum::<f64>() / ret1.len() as f64).sqrt();
    let reversal = if sd30 > 0.0 {
        (ret10 / (sd30 * 10f64.sqrt())).tanh()
    } else {
        0.0
    };
    (2.0 * corr(&close, &volume)).tanh() - 0.5 * reversal
}

/// Simulates the market; returns the panel (with oracle) ready for [`write_panel`].
pub fn synth_arrays(cfg: &SynthConfig) -> Result<(PanelMeta, PanelArrays)> {
    cfg.validate()?;
    let (t_len, n) = (cfg.days, cfg.stocks);
    let (nf, np, ns) = (N_FEATURES, PRICE_FIELDS.len(), STYLE_NAMES.len());
    let dates = business_days(t_len);
    let stocks = draw_stocks(cfg);

    let mut a = PanelArrays {
        features: vec![f32::NAN; t_len * n * nf],
        price: vec![f32::NAN; t_len * n * np],
        tradable: vec![0; t_len * n],
        styles: vec![f32::NAN; t_len * n * ns],
        industry: vec![-1; t_len * n],
        size: vec![f32::NAN; t_len * n],
        oracle: None,
        index: None,
    };
    let mut signal = vec![0.0f64; t_len * n];
    let mut size_z = vec![0.0f64; t_len * n];

    let mut market_rng = stream(cfg.seed, "synth/market");
    let mut daily = stream(cfg.seed, "synth/daily");
    let mut suspend_rng = stream(cfg.seed, "synth/suspend");
    let mut state: Vec<State> = stocks
        .iter()
        .map(|s| State {
            prev_close: s.ipo_price,
            vol_ar: 0.0,
            gamma: normal(&mut daily),
            suspended_left: 0,
        })
        .collect();

    for t in 0..t_len {
        let m = MARKET_MEAN + MARKET_SD * normal(&mut market_rng);
        let ind: Vec<f64> = (0..INDUSTRY_NAMES.len())
            .map(|_| INDUSTRY_SD * normal(&mut market_rng))
            .collect();
        for (i, (s, st)) in stocks.iter().zip(state.iter_mut()).enumerate() {
            if t < s.list_day {
                continue;
            }
            // A fixed set of draws per stock-day keeps the streams aligned across branches.
            let z: [f64; 6] = std::array::from_fn(|_| normal(&mut daily));
            let u: [f64; 4] = std::array::from_fn(|_| daily.gen::<f64>());
            st.vol_ar = VOL_AR * st.vol_ar + VOL_AR_SD * z[4];
            st.gamma = GAMMA_AR * st.gamma + (1.0 - GAMMA_AR * GAMMA_AR).sqrt() * z[5];

            let cell = t * n + i;
            let is_st = s.st.contains(&t);
            let mut fl = flags::LISTED | if is_st { flags::ST } else { 0 };
            a.industry[cell] = s.industry as i16;
            let (p_sus, len_sus) = (
                suspend_rng.gen::<f64>(),
                suspend_rng.gen_range(1..=SUSPEND_MAX_DAYS),
            );
            if st.suspended_left == 0 && t > s.list_day && p_sus < SUSPEND_PROB {
                st.suspended_left = len_sus;
            }
            let prev = st.prev_close;
            let (open, high, low, close, vwap);
            if st.suspended_left > 0 {
                st.suspended_left -= 1;
                fl |= flags::SUSPENDED;
                (open, high, low, close, vwap) = (prev, prev, prev, prev, prev);
            } else {
                let ratio = limit_ratio(&s.code, &dates[t], is_st);
                let drift_s = (t.saturating_sub(10)..t)
                    .map(|u| signal[u * n + i])
                    .sum::<f64>()
                    / 10.0;
                let size_prev = if t > 0 { size_z[(t - 1) * n + i] } else { 0.0 };
                let jump = if u[0] < JUMP_PROB {
                    (0.05 + 0.15 * u[1]) * if u[3] < 0.5 { 1.0 } else { -1.0 }
                } else {
                    0.0
                };
                let r_pre = s.beta * m + ind[s.industry] + KAPPA * s.sigma * drift_s
                    - LAMBDA * size_prev
                    + s.sigma * z[0]
                    + jump;
                let (down, up) = limit_prices(prev, ratio);
                close = round_price(prev * (1.0 + r_pre)).clamp(down, up);
                let gap = jump + 0.35 * (r_pre - jump) + 0.3 * s.sigma * z[2];
                open = round_price(prev * gap.exp()).clamp(down, up);
                fl |= open_limit_flags(prev, open, ratio);
                high = round_price(open.max(close) * (0.5 * s.sigma * z[3].abs()).exp()).min(up);
                low = round_price(open.min(close) * (-0.5 * s.sigma * z[1].abs()).exp())
                    .max(down)
                    .max(0.01);
                vwap = u[2] * 0.5 * (open + close) + (1.0 - u[2]) * 0.5 * (high + low);
                let r = close / prev - 1.0;
                let log_vol = (s.float_shares * s.base_turn).ln()
                    + st.vol_ar
                    + VOL_LOADING * st.gamma * (r / s.sigma).clamp(-3.0, 3.0);
                let volume =
                    ((log_vol.exp() / 100.0).round() * 100.0).clamp(100.0, MAX_TURN * s.free_float);
                let turn = volume / s.float_shares * 100.0;
                let free_turn = volume / s.free_float * 100.0;
                let ret1 = if t > s.list_day { r } else { f64::NAN };
                a.features[cell * nf..(cell + 1) * nf].copy_from_slice(&feature_row(
                    ret1, open, close, high, low, volume, vwap, turn, free_turn,
                ));
                st.prev_close = close;
            }
            a.tradable[cell] = fl;
            let px = [open, high, low, close, vwap, close].map(|x| x as f32);
            a.price[cell * np..(cell + 1) * np].copy_from_slice(&px);
            a.size[cell] = (close * s.total_shares).ln() as f32;
        }
        write_styles(&stocks, t, n, &mut a, &mut size_z);
        for i in 0..n {
            signal[t * n + i] = planted_signal(&a.features, n, t, i);
        }
    }

    let mut nan_rng = stream(cfg.seed, "synth/nan");
    let cells = a.features.len();
    for _ in 0..(cells as f64 * NAN_SHARE).round() as usize {
        a.features[nan_rng.gen_range(0..cells)] = f32::NAN;
    }

    let mut meta = PanelMeta {
        format_version: FORMAT_VERSION,
        source: "synth".into(),
        dates,
        codes: stocks.iter().map(|s| s.code.clone()).collect(),
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        price_fields: PRICE_FIELDS.iter().map(|s| s.to_string()).collect(),
        style_names: STYLE_NAMES.iter().map(|s| s.to_string()).collect(),
        industry_names: INDUSTRY_NAMES.iter().map(|s| s.to_string()).collect(),
        proxies: Vec::new(),
        missing_styles: MISSING_STYLES.iter().map(|s| s.to_string()).collect(),
        oracle: None,
        benchmarks: vec![BenchmarkMeta {
            name: BENCHMARK_NAME.into(),
            weighting: format!(
                "total market cap (close × total shares); members = the top {:.0}% of listed, \
                 unsuspended stocks by market cap, reconstituted every {BENCHMARK_RECONSTITUTE} \
                 trading days",
                100.0 * BENCHMARK_SHARE
            ),
        }],
        provenance: serde_json::json!({
            "generator": "alphanet synth",
            "seed": cfg.seed,
            "stocks": cfg.stocks,
            "days": cfg.days,
            "kappa": KAPPA,
            "lambda": LAMBDA,
            "jump_prob": JUMP_PROB,
            "notes": "raw prices equal adjusted prices (no corporate actions); see src/data/synth.rs",
        }),
    };
    a.index = Some(benchmark_weights(&a, n));
    let oracle = oracle_values(&stocks, &signal, &size_z, &a, &meta);
    let rank_ic_mean = oracle_rank_ic(&oracle, &a, &meta)?;
    a.oracle = Some(oracle);
    meta.oracle = Some(OracleMeta {
        file: "oracle.npy".into(),
        description: "known-at-t part of E[label]: planted-signal drift of days t+2..t+11 from \
                      signals up to t, size drift -10*lambda*size_z_t, market drift 10*beta*3e-4"
            .into(),
        rank_ic_mean,
    });
    Ok((meta, a))
}

/// Size, beta and volatility exposures of date t over the stocks listed at t.
fn write_styles(stocks: &[Stock], t: usize, n: usize, a: &mut PanelArrays, size_z: &mut [f64]) {
    let listed: Vec<bool> = (0..n)
        .map(|i| a.tradable[t * n + i] & flags::LISTED != 0)
        .collect();
    let column = |f: &dyn Fn(usize) -> f64| -> Vec<f32> {
        let mut v: Vec<f32> = (0..n)
            .map(|i| if listed[i] { f(i) as f32 } else { f32::NAN })
            .collect();
        style_zscore(&mut v);
        v
    };
    let size = column(&|i| a.size[t * n + i] as f64);
    let beta = column(&|i| stocks[i].beta);
    let vol = column(&|i| stocks[i].sigma);
    for i in 0..n {
        let row = &mut a.styles[(t * n + i) * STYLE_NAMES.len()..][..STYLE_NAMES.len()];
        row.copy_from_slice(&[size[i], beta[i], vol[i]]);
        size_z[t * n + i] = if size[i].is_finite() {
            size[i] as f64
        } else {
            0.0
        };
    }
}

fn oracle_values(
    stocks: &[Stock],
    signal: &[f64],
    size_z: &[f64],
    a: &PanelArrays,
    meta: &PanelMeta,
) -> Vec<f32> {
    let n = meta.n_stocks();
    let labels = super::samples::raw_labels(a.view(meta));
    let mut out = vec![f32::NAN; labels.len()];
    for (cell, o) in out.iter_mut().enumerate() {
        if !labels[cell].is_finite() {
            continue;
        }
        let (t, i) = (cell / n, cell % n);
        let s = &stocks[i];
        let known: f64 = (t.saturating_sub(8)..=t)
            .map(|u| (u + 9 - t) as f64 * signal[u * n + i])
            .sum();
        *o = (KAPPA * s.sigma / 10.0 * known - 10.0 * LAMBDA * size_z[cell]
            + 10.0 * s.beta * MARKET_MEAN) as f32;
    }
    out
}

/// The synthetic benchmark `[T, N, 1]`: members picked by market cap on every
/// `BENCHMARK_RECONSTITUTE`-th date among listed, unsuspended stocks, weighted each day by
/// market cap (`exp(size)`), like a cap-weighted index with periodic reviews.
fn benchmark_weights(a: &PanelArrays, n: usize) -> Vec<f32> {
    let t_len = a.size.len() / n;
    let mut out = vec![0.0f32; t_len * n];
    let mut members: Vec<usize> = Vec::new();
    for t in 0..t_len {
        let cap = |i: usize| (a.size[t * n + i] as f64).exp();
        if t % BENCHMARK_RECONSTITUTE == 0 {
            let mut eligible: Vec<usize> = (0..n)
                .filter(|&i| {
                    a.tradable[t * n + i] & (flags::LISTED | flags::SUSPENDED) == flags::LISTED
                        && a.size[t * n + i].is_finite()
                })
                .collect();
            eligible.sort_by(|&x, &y| cap(y).total_cmp(&cap(x)).then(x.cmp(&y)));
            eligible.truncate(((n as f64) * BENCHMARK_SHARE).round() as usize);
            eligible.sort_unstable();
            members = eligible;
        }
        let total: f64 = members.iter().map(|&i| cap(i)).sum();
        for &i in &members {
            out[t * n + i] = (cap(i) / total) as f32;
        }
    }
    out
}

/// Mean over dates of Spearman(oracle, raw label) on the evaluation universe.
fn oracle_rank_ic(oracle: &[f32], a: &PanelArrays, meta: &PanelMeta) -> Result<f64> {
    let n = meta.n_stocks();
    let idx = SampleIndex::build_for(a.view(meta), 0..meta.n_dates(), 1, Universe::Eval)?;
    let ics: Vec<f64> = idx
        .dates
        .iter()
        .zip(&idx.per_date)
        .zip(&idx.labels_raw)
        .map(|((&t, stocks), y)| {
            let o: Vec<f32> = stocks
                .iter()
                .map(|&i| oracle[t as usize * n + i as usize])
                .collect();
            spearman(&o, y)
        })
        .filter(|ic| ic.is_finite())
        .collect();
    Ok(ics.iter().sum::<f64>() / ics.len().max(1) as f64)
}

/// Simulates the market of `cfg` and writes it as a panel at `out` (which must not exist).
pub fn write_synth(cfg: &SynthConfig, out: &Path) -> Result<()> {
    crate::util::fs::check_output_creatable(out)?;
    let (meta, arrays) = synth_arrays(cfg)?;
    write_panel(out, &meta, &arrays)
}
