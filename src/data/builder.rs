//! Assembling a panel from per-stock daily histories: the half the importers share.
//!
//! An importer reads one stock at a time into a [`StockHistory`] on the panel's calendar and
//! hands it to [`PanelBuilder::add_stock`], which scatters it into the date-major arrays of
//! docs/data.md (features, prices, flags, size, industry) and keeps the two stock-major series the
//! styles need (daily return and turnover, 4 bytes per stock-day each).
//! [`PanelBuilder::finish`] computes the market return and the styles of docs/data.md. Only one
//! stock's source data is in memory at a time; the panel arrays themselves are held once and
//! written by [`super::panel::write_panel`] straight from that one copy.

use super::calendar::parse_date;
use super::features::{feature_row, FEATURE_NAMES};
use super::limits::{limit_ratio, open_limit_flags};
use super::panel::{flags, BenchmarkMeta, PanelArrays, PanelMeta, FORMAT_VERSION, PRICE_FIELDS};
use super::styles::{self, StyleInputs};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ops::Range;

/// One stock-day as the importers deliver it. Prices are adjusted unless named `raw_`.
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub vwap: f64,
    pub raw_close: f64,
    /// Shares traded.
    pub volume: f64,
    /// Turnover (the source's units or the documented proxy); NaN unknown.
    pub turn: f64,
    pub suspended: bool,
    pub st: bool,
    /// Raw (ex-rights) reference price today's limits are set from; NaN where there is none
    /// (first day of listing: no limit check).
    pub limit_ref: f64,
    pub raw_open: f64,
    /// ln(float market cap), or the documented proxy; NaN unknown.
    pub log_cap: f64,
    /// 1 / (price-to-book), NaN unknown.
    pub book_to_price: f64,
    /// 1 / (price-to-earnings TTM), NaN unknown.
    pub earnings_yield: f64,
    /// In the point-in-time universe of the import (e.g. a CSI300 member that day).
    pub member: bool,
}

/// A stock's rows on the panel calendar: `days[r]` is panel date `first + r`; `None` is a date
/// inside the stock's range that the source has no row for (left unlisted: flags 0, NaN).
#[derive(Debug, Clone, Default)]
pub struct StockHistory {
    pub first: usize,
    pub days: Vec<Option<Day>>,
    /// Rows on the panel calendar whose prices are impossible ([`implausible_prices`]) or whose
    /// volume is negative or not a number: made suspended (missing features, untradable).
    pub invalid_rows: usize,
    /// The invalid rows by [`row_problem`] (e.g. "factor is not positive": 12).
    pub invalid_reasons: BTreeMap<String, usize>,
    /// Rows on the panel calendar without prices (NaN in the source): made suspended.
    pub no_price_rows: usize,
}

/// Relative slack of the open/close-within-[low, high] check: adjusted prices are products
/// stored as f32, and sources round.
pub const PRICE_TOLERANCE: f64 = 1e-3;

/// Whether a row's prices are impossible: any of open, high, low, close not a positive number,
/// or open or close outside [low, high] (or low above high) by more than [`PRICE_TOLERANCE`]. Such
/// a row is made missing and untradable by both importers (docs/data.md), never used as a price.
pub fn implausible_prices(open: f64, high: f64, low: f64, close: f64) -> bool {
    let positive = [open, high, low, close]
        .iter()
        .all(|x| x.is_finite() && *x > 0.0);
    let (lo, hi) = (
        low * (1.0 - PRICE_TOLERANCE),
        high * (1.0 + PRICE_TOLERANCE),
    );
    !(positive && lo <= high && lo <= open && open <= hi && lo <= close && close <= hi)
}

/// Why a row's prices or volume cannot be used, naming the first field that fails: a price
/// (open, high, low, close, and the adjustment factor where the source has one) that is NaN,
/// infinite or not positive, open or close outside [low, high] ([`implausible_prices`]), or a
/// volume that is negative or NaN. `None` for a usable row.
pub fn row_problem(prices: &[(&str, f64)], volume: f64) -> Option<String> {
    for &(name, x) in prices {
        if x.is_nan() {
            return Some(format!("{name} is NaN"));
        }
        if x.is_infinite() {
            return Some(format!("{name} is infinite"));
        }
        if x <= 0.0 {
            return Some(format!("{name} is not positive"));
        }
    }
    let at = |name: &str| {
        prices
            .iter()
            .find(|p| p.0 == name)
            .map_or(f64::NAN, |p| p.1)
    };
    if implausible_prices(at("open"), at("high"), at("low"), at("close")) {
        return Some("open or close outside [low, high]".into());
    }
    (volume.is_nan() || volume < 0.0).then(|| "volume is negative or NaN".into())
}

/// Per-stock counts of rows an importer made missing, for `meta.json` and the command's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowAudit {
    /// (code, rows with impossible prices or volume), stocks with at least one, most first.
    pub invalid: Vec<(String, usize)>,
    /// (code, rows without prices), stocks with at least one, most first.
    pub no_price: Vec<(String, usize)>,
    /// Invalid rows by [`row_problem`], over every stock.
    pub reasons: BTreeMap<String, usize>,
}

impl RowAudit {
    pub fn add(&mut self, code: &str, h: &StockHistory) {
        if h.invalid_rows > 0 {
            self.invalid.push((code.to_string(), h.invalid_rows));
        }
        for (why, k) in &h.invalid_reasons {
            *self.reasons.entry(why.clone()).or_default() += k;
        }
        if h.no_price_rows > 0 {
            self.no_price.push((code.to_string(), h.no_price_rows));
        }
    }

    /// Sorts most first (ties by code) and returns the `meta.json` provenance entry.
    pub fn finish(&mut self) -> serde_json::Value {
        for v in [&mut self.invalid, &mut self.no_price] {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        }
        let per_stock = |v: &[(String, usize)]| {
            v.iter()
                .map(|(c, n)| (c.clone(), serde_json::json!(n)))
                .collect::<serde_json::Map<_, _>>()
        };
        serde_json::json!({
            "rule": format!(
                "a row whose open, high, low or close is not a positive number, whose open or close lies \
                 outside [low, high] by more than {}%, or whose volume is negative or not a number, is \
                 made missing and untradable (suspended, features NaN, prices carried forward)",
                100.0 * PRICE_TOLERANCE
            ),
            "invalid_rows": self.invalid.iter().map(|x| x.1).sum::<usize>(),
            "invalid_rows_per_stock": per_stock(&self.invalid),
            "invalid_rows_by_reason": self.reasons,
            "rows_without_prices": self.no_price.iter().map(|x| x.1).sum::<usize>(),
            "rows_without_prices_per_stock": per_stock(&self.no_price),
        })
    }
}

impl RowAudit {
    /// The import's warnings about rows made missing, as the CLI and Python print them: totals,
    /// the reasons with their counts, and the five stocks with the most.
    pub fn warnings(&self) -> Vec<String> {
        let worst = |v: &[(String, usize)]| {
            v.iter()
                .take(5)
                .map(|(c, n)| format!("{c} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let total = |v: &[(String, usize)]| v.iter().map(|x| x.1).sum::<usize>();
        let mut lines = Vec::new();
        if !self.invalid.is_empty() {
            let reasons = self
                .reasons
                .iter()
                .map(|(why, k)| format!("{why}: {k}"))
                .collect::<Vec<_>>()
                .join("; ");
            lines.push(format!(
                "{} stock-days of {} stocks have impossible prices or volume ({reasons}): made missing \
                 and untradable (counts per stock in meta.json provenance.row_checks); most: {}",
                total(&self.invalid),
                self.invalid.len(),
                worst(&self.invalid)
            ));
        }
        if !self.no_price.is_empty() {
            lines.push(format!(
                "{} stock-days of {} stocks have no prices in the source (NaN): made suspended \
                 (counts per stock in meta.json provenance.row_checks); most: {}",
                total(&self.no_price),
                self.no_price.len(),
                worst(&self.no_price)
            ));
        }
        lines
    }
}

/// Where the market return for Beta and the residual-volatility regressions comes from.
pub enum Market {
    /// An index's daily returns on the panel calendar (NaN unknown), with its code.
    Index { code: String, returns: Vec<f64> },
    /// Cap-weighted mean return of the panel's stocks, weights exp(size) of the day before.
    CapWeighted,
}

/// What the importer knows about the panel beyond the arrays.
pub struct Provenance {
    pub source: String,
    pub industry_names: Vec<String>,
    pub proxies: Vec<String>,
    pub details: serde_json::Value,
    /// Name under which the import's point-in-time universe is also written as a benchmark
    /// (`index.npy`), e.g. `csi300`; None when the universe is not an index (`all`).
    pub benchmark: Option<String>,
}

pub struct PanelBuilder {
    dates: Vec<String>,
    codes: Vec<String>,
    industry_of: Vec<i16>,
    arrays: PanelArrays,
    /// `[N, T]`: adjusted close-to-close return on traded days, NaN otherwise.
    ret: Vec<f32>,
    /// `[N, T]`: turnover on listed days (0 when suspended), NaN otherwise.
    turn: Vec<f32>,
    /// `[T, N]` book-to-price and earnings yield, when the source has valuations.
    valuation: Option<(Vec<f32>, Vec<f32>)>,
}

impl PanelBuilder {
    /// An empty panel of `dates × codes`; `industry_of[i]` is stock i's industry (−1 unknown).
    /// `with_valuation`: the source has P/B and P/E (Book-to-Price, Earnings Yield styles).
    pub fn new(
        dates: Vec<String>,
        codes: Vec<String>,
        industry_of: Vec<i16>,
        with_valuation: bool,
    ) -> PanelBuilder {
        let (t, n) = (dates.len(), codes.len());
        assert_eq!(industry_of.len(), n, "one industry per code");
        let cells = t * n;
        PanelBuilder {
            arrays: PanelArrays {
                features: vec![f32::NAN; cells * FEATURE_NAMES.len()],
                price: vec![f32::NAN; cells * PRICE_FIELDS.len()],
                tradable: vec![0; cells],
                styles: Vec::new(),
                industry: vec![-1; cells],
                size: vec![f32::NAN; cells],
                oracle: None,
                index: None,
            },
            ret: vec![f32::NAN; cells],
            turn: vec![f32::NAN; cells],
            valuation: with_valuation.then(|| (vec![f32::NAN; cells], vec![f32::NAN; cells])),
            dates,
            codes,
            industry_of,
        }
    }

    /// Scatters stock `i`'s history into the panel. Features of suspended days stay NaN (a
    /// picture holding one is dropped); their prices are the source's flat prices.
    pub fn add_stock(&mut self, i: usize, h: &StockHistory) {
        let (t_len, n) = (self.dates.len(), self.codes.len());
        assert!(
            h.first + h.days.len() <= t_len,
            "history runs past the calendar"
        );
        let (nf, np) = (FEATURE_NAMES.len(), PRICE_FIELDS.len());
        let mut prev_close = f64::NAN;
        for (r, day) in h.days.iter().enumerate() {
            let t = h.first + r;
            let cell = t * n + i;
            let Some(d) = day else {
                prev_close = f64::NAN;
                continue;
            };
            let mut fl = flags::LISTED;
            if !d.member {
                fl |= flags::OUTSIDE_UNIVERSE;
            }
            if d.st {
                fl |= flags::ST;
            }
            if d.suspended {
                fl |= flags::SUSPENDED;
            } else if d.limit_ref > 0.0 && d.raw_open.is_finite() {
                let ratio = limit_ratio(&self.codes[i], &self.dates[t], d.st);
                fl |= open_limit_flags(d.limit_ref, d.raw_open, ratio);
            }
            self.arrays.tradable[cell] = fl;
            let px = [d.open, d.high, d.low, d.close, d.vwap, d.raw_close].map(|x| x as f32);
            self.arrays.price[cell * np..(cell + 1) * np].copy_from_slice(&px);
            let ret1 = d.close / prev_close - 1.0;
            if !d.suspended {
                // A traded day with a turnover of 0 (a source that rounds it, or lacks it) has an
                // unknown turnover: NaN in the four turnover features, not an infinite ratio.
                let turn = if d.turn > 0.0 { d.turn } else { f64::NAN };
                self.arrays.features[cell * nf..(cell + 1) * nf].copy_from_slice(&feature_row(
                    ret1, d.open, d.close, d.high, d.low, d.volume, d.vwap, turn, turn,
                ));
                self.ret[i * t_len + t] = ret1 as f32;
            }
            self.turn[i * t_len + t] = if d.suspended { 0.0 } else { d.turn as f32 };
            self.arrays.size[cell] = d.log_cap as f32;
            self.arrays.industry[cell] = self.industry_of[i];
            if let Some((bp, ep)) = &mut self.valuation {
                bp[cell] = d.book_to_price as f32;
                ep[cell] = d.earnings_yield as f32;
            }
            prev_close = d.close;
        }
    }

    /// Computes the market return and the styles, and returns the finished panel.
    pub fn finish(self, market: Market, prov: Provenance) -> (PanelMeta, PanelArrays) {
        let (t_len, n) = (self.dates.len(), self.codes.len());
        let (market_returns, market_note) = match market {
            Market::Index { code, returns } => {
                assert_eq!(returns.len(), t_len, "one market return per date");
                (returns, format!("index {code}"))
            }
            Market::CapWeighted => (
                cap_weighted_returns(&self.ret, &self.arrays.size, t_len, n),
                "cap-weighted mean return of the panel's stocks (weights exp(size) of the day before)"
                    .to_string(),
            ),
        };
        let mut arrays = self.arrays;
        let inputs = StyleInputs {
            n_dates: t_len,
            n_stocks: n,
            ret: &self.ret,
            turn: &self.turn,
            market: &market_returns,
            log_cap: &arrays.size,
            tradable: &arrays.tradable,
            valuation: self
                .valuation
                .as_ref()
                .map(|(bp, ep)| (bp.as_slice(), ep.as_slice())),
        };
        arrays.styles = styles::compute(&inputs);
        let with_valuation = self.valuation.is_some();
        let mut details = prov.details;
        if let Some(obj) = details.as_object_mut() {
            obj.insert("market".into(), market_note.into());
            obj.insert("styles".into(), styles::DEFINITIONS.into());
        }
        let benchmarks = match prov.benchmark {
            Some(name) => {
                arrays.index = Some(member_weights(&arrays.tradable, &arrays.size, n));
                vec![BenchmarkMeta {
                    name,
                    weighting: BENCHMARK_WEIGHTING.into(),
                }]
            }
            None => vec![],
        };
        let meta = PanelMeta {
            format_version: FORMAT_VERSION,
            source: prov.source,
            dates: self.dates,
            codes: self.codes,
            feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            price_fields: PRICE_FIELDS.iter().map(|s| s.to_string()).collect(),
            style_names: styles::names(with_valuation)
                .iter()
                .map(|s| s.to_string())
                .collect(),
            industry_names: prov.industry_names,
            proxies: prov.proxies,
            missing_styles: styles::missing(with_valuation)
                .iter()
                .map(|s| s.to_string())
                .collect(),
            oracle: None,
            benchmarks,
            provenance: details,
        };
        (meta, arrays)
    }
}

const BENCHMARK_WEIGHTING: &str = "proxy: members of the point-in-time universe \
(the instruments file's intervals), weighted by exp(size) where size is the panel's log-cap proxy, \
normalized per date; the source has no index weights";

/// `[T, N, 1]` benchmark weights: stocks listed and inside the import's universe on date t,
/// weighted by exp(size), summing to 1 per date (all zero on a date without members).
fn member_weights(tradable: &[u8], size: &[f32], n: usize) -> Vec<f32> {
    let mut w: Vec<f32> = tradable
        .iter()
        .zip(size)
        .map(|(&f, &s)| {
            let member = f & flags::LISTED != 0 && f & flags::OUTSIDE_UNIVERSE == 0;
            if member && s.is_finite() {
                s.exp()
            } else {
                0.0
            }
        })
        .collect();
    for row in w.chunks_mut(n) {
        let total: f64 = row.iter().map(|&x| x as f64).sum();
        if total > 0.0 {
            row.iter_mut().for_each(|x| *x = (*x as f64 / total) as f32);
        }
    }
    w
}

/// Market return of each date: Σ w·r / Σ w over stocks with a return that day and a finite
/// size the day before, w = exp(size_{t−1}); NaN where no stock qualifies.
fn cap_weighted_returns(ret: &[f32], size: &[f32], t_len: usize, n: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; t_len];
    for (t, m) in out.iter_mut().enumerate().skip(1) {
        let (mut sw, mut swr) = (0.0, 0.0);
        for i in 0..n {
            let (r, s) = (ret[i * t_len + t] as f64, size[(t - 1) * n + i] as f64);
            if r.is_finite() && s.is_finite() {
                let w = s.exp();
                sw += w;
                swr += w * r;
            }
        }
        if sw > 0.0 {
            *m = swr / sw;
        }
    }
    out
}

/// Exchange code in the panel's form: `sh.600000`, `600000.SH`, `sh600000` → `SH600000`.
pub fn normalize_code(code: &str) -> String {
    let c = code.trim().to_ascii_uppercase();
    if let Some((a, b)) = c.split_once('.') {
        if a.chars().all(|ch| ch.is_ascii_digit()) {
            return format!("{b}{a}");
        }
        return format!("{a}{b}");
    }
    c
}

/// Index codes (SSE 000xxx, SZSE 399xxx) are benchmarks, not stocks.
pub fn is_index_code(code: &str) -> bool {
    let c = normalize_code(code);
    c.starts_with("SH000") || c.starts_with("SZ399")
}

/// What an import produced, for the command's report.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub n_dates: usize,
    pub n_stocks: usize,
    /// Codes the instrument list names but the source has no data for (left out).
    pub skipped: Vec<String>,
    /// Stock-days inside a stock's range that the source has no row for (left unlisted).
    pub missing_rows: usize,
    /// Rows made missing and untradable for impossible or absent prices.
    pub audit: RowAudit,
    /// One line each, printed by the command: what the import had to assume.
    pub warnings: Vec<String>,
}

/// The index range of `dates` (sorted `YYYY-MM-DD`) within `[start, end]`; `source` names the
/// calendar in errors.
pub fn calendar_range(
    dates: &[String],
    start: Option<&str>,
    end: Option<&str>,
    source: &str,
) -> Result<Range<usize>> {
    for (flag, d) in [("--start", start), ("--end", end)] {
        if let Some(d) = d.filter(|d| parse_date(d).is_none()) {
            return Err(Error::Config(format!(
                "{flag} {d}: expected a YYYY-MM-DD date"
            )));
        }
    }
    let lo = start.map_or(0, |s| dates.partition_point(|d| d.as_str() < s));
    let hi = end.map_or(dates.len(), |e| dates.partition_point(|d| d.as_str() <= e));
    if lo >= hi {
        return Err(Error::Data(format!(
            "no trading dates between {} and {} in {source} ({} dates, {} .. {})",
            start.unwrap_or("the start"),
            end.unwrap_or("the end"),
            dates.len(),
            dates.first().map_or("", String::as_str),
            dates.last().map_or("", String::as_str),
        )));
    }
    Ok(lo..hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalize_to_exchange_prefix_form() {
        assert_eq!(normalize_code("sh.600000"), "SH600000");
        assert_eq!(normalize_code("600000.SH"), "SH600000");
        assert_eq!(normalize_code("sz300750"), "SZ300750");
        assert!(is_index_code("SH000300"));
        assert!(is_index_code("sz.399006"));
        assert!(!is_index_code("SZ000001"));
    }
}
