//! `alphanet import baostock`: one baostock daily CSV per stock (`sh.600000.csv`), as written by
//! `query_history_k_data_plus(..., adjustflag="3")` with the fields
//! `date code open high low close preclose volume amount turn tradestatus isST pbMRQ peTTM`
//! (any order, others ignored).
//!
//! Two passes, one stock in memory at a time: the first collects the calendar (the union of
//! the files' dates), the second reads each stock onto it. Prices are unadjusted in the files;
//! they are back-adjusted to each file's first row with `preclose`, the exchange's ex-rights
//! previous close: `factor_r = factor_{r−1} · close_{r−1} / preclose_r`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use super::builder::{
    calendar_range, implausible_prices, normalize_code, row_problem, Day, ImportSummary, Market,
    PanelBuilder, Provenance, RowAudit, StockHistory,
};
use super::calendar::parse_date;
use super::industry::{csv_error, industries_for};
use super::panel::write_panel;
use crate::error::{Error, Result};

pub const PROXIES: [&str; 6] = [
    "adjusted prices = raw x factor, factor_r = factor_(r-1) x close_(r-1) / preclose_r \
     (back-adjusted to each file's first row)",
    "vwap = amount / volume (clamped into [low, high]; close on suspended days), adjusted",
    "free_turn = turn (no free-float data)",
    "size = ln(float market cap), float shares = volume / (turn / 100), carried forward over \
     suspensions",
    "no limit check on a stock's first row (its preclose may be an IPO price)",
    "market for beta = cap-weighted mean return of the panel's stocks (no index in the source)",
];

const COLUMNS: [&str; 13] = [
    "date",
    "open",
    "high",
    "low",
    "close",
    "preclose",
    "volume",
    "amount",
    "turn",
    "tradestatus",
    "isST",
    "pbMRQ",
    "peTTM",
];
// Positions in COLUMNS.
const DATE: usize = 0;
const OPEN: usize = 1;
const HIGH: usize = 2;
const LOW: usize = 3;
const CLOSE: usize = 4;
const PRECLOSE: usize = 5;
const VOLUME: usize = 6;
const AMOUNT: usize = 7;
const TURN: usize = 8;
const STATUS: usize = 9;
const IS_ST: usize = 10;
const PB: usize = 11;
const PE: usize = 12;
/// Columns that may not be empty.
const REQUIRED: [usize; 7] = [DATE, OPEN, HIGH, LOW, CLOSE, PRECLOSE, STATUS];

pub struct BaostockOptions {
    pub src: PathBuf,
    pub out: PathBuf,
    pub industry: Option<PathBuf>,
    pub start: Option<String>,
    pub end: Option<String>,
}

/// Imports the baostock CSV directory `o.src` into a new panel at `o.out`.
pub fn import_baostock(o: &BaostockOptions, progress: &ProgressBar) -> Result<ImportSummary> {
    crate::util::fs::check_output_creatable(&o.out)?;
    let files = csv_files(&o.src)?;
    let mut all_dates = BTreeSet::new();
    let mut stocks: Vec<(String, PathBuf)> = Vec::new();
    for path in &files {
        let (code, dates) = scan_file(path)?;
        all_dates.extend(dates);
        stocks.push((code, path.clone()));
    }
    stocks.sort();
    if let Some(w) = stocks.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::Data(format!(
            "{} and {} hold the same code {}",
            w[0].1.display(),
            w[1].1.display(),
            w[0].0
        )));
    }
    let calendar: Vec<String> = all_dates.into_iter().collect();
    let range = calendar_range(
        &calendar,
        o.start.as_deref(),
        o.end.as_deref(),
        &format!("the dates of {}", o.src.display()),
    )?;
    let codes: Vec<String> = stocks.iter().map(|s| s.0.clone()).collect();
    let (industry_names, industry_of, industry_note, industry_warning) =
        industries_for(o.industry.as_deref(), &codes)?;
    let mut builder = PanelBuilder::new(
        calendar[range.clone()].to_vec(),
        codes.clone(),
        industry_of,
        true,
    );
    progress.set_length(stocks.len() as u64);
    let mut missing_rows = 0;
    let mut audit = RowAudit::default();
    for (i, (code, path)) in stocks.iter().enumerate() {
        let h = read_stock(path, &calendar, range.clone())?;
        missing_rows += h.days.iter().filter(|d| d.is_none()).count();
        audit.add(code, &h);
        builder.add_stock(i, &h);
        progress.inc(1);
    }
    let audit_json = audit.finish();
    let mut proxies: Vec<String> = PROXIES.iter().map(|s| s.to_string()).collect();
    proxies.push(industry_note);
    let (meta, arrays) = builder.finish(
        Market::CapWeighted,
        Provenance {
            source: "baostock".into(),
            // The CSV set is one CSI300 snapshot applied to every date: not a point-in-time index.
            benchmark: None,
            industry_names,
            proxies,
            details: serde_json::json!({
                "importer": "alphanet import baostock",
                "src": o.src.display().to_string(),
                "start": o.start,
                "end": o.end,
                "industry_file": o.industry.as_ref().map(|p| p.display().to_string()),
                "missing_rows": missing_rows,
                "row_checks": audit_json,
                "universe": "every stock of the source (baostock files carry no membership history)",
            }),
        },
    );
    write_panel(&o.out, &meta, &arrays)?;
    Ok(ImportSummary {
        n_dates: meta.n_dates(),
        n_stocks: codes.len(),
        skipped: Vec::new(),
        missing_rows,
        audit,
        warnings: industry_warning.into_iter().collect(),
    })
}

/// The `.csv` files of `dir`, sorted.
fn csv_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for e in entries {
        let path = e.map_err(|e| Error::io(dir, e))?.path();
        if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("csv"))
        {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::Data(format!(
            "{}: no .csv files (expected one baostock daily CSV per stock, e.g. sh.600000.csv)",
            dir.display()
        )));
    }
    files.sort();
    Ok(files)
}

/// A reader over `path` and the positions of [`COLUMNS`] in its header.
fn open_csv(path: &Path) -> Result<(csv::Reader<fs::File>, [usize; COLUMNS.len()])> {
    let mut rd = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let headers = rd.headers().map_err(|e| csv_error(path, e))?;
    let mut cols = [0; COLUMNS.len()];
    for (k, name) in COLUMNS.iter().enumerate() {
        cols[k] = headers.iter().position(|h| h == *name).ok_or_else(|| {
            Error::Data(format!(
                "{}:1: header has no `{name}` column (needs {})",
                path.display(),
                COLUMNS.join(",")
            ))
        })?;
    }
    Ok((rd, cols))
}

/// The code (from the file name, `sh.600000.csv` → `SH600000`) and the dates of one file,
/// checked to increase.
fn scan_file(path: &Path) -> Result<(String, Vec<String>)> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut rd, cols) = open_csv(path)?;
    let mut dates: Vec<String> = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = rec.position().map_or(0, |p| p.line());
        let d = rec.get(cols[DATE]).unwrap_or("").trim();
        if parse_date(d).is_none() {
            return Err(Error::Data(format!(
                "{}:{line}: date {d:?} is not YYYY-MM-DD",
                path.display()
            )));
        }
        if dates.last().is_some_and(|p| p.as_str() >= d) {
            return Err(Error::Data(format!(
                "{}:{line}: date {d} does not follow {} (rows must be in date order)",
                path.display(),
                dates[dates.len() - 1]
            )));
        }
        dates.push(d.to_string());
    }
    if dates.is_empty() {
        return Err(Error::Data(format!("{}: no rows", path.display())));
    }
    Ok((normalize_code(&stem), dates))
}

/// One file's days on `calendar[range]`; rows before the range still carry the adjustment
/// factor and the float share count forward. A row with impossible prices
/// ([`implausible_prices`]) becomes a suspended day at the last valid prices (none before the
/// first valid row), and the adjustment factor is carried unchanged across it: its close is not
/// trusted as the next row's reference.
fn read_stock(
    path: &Path,
    calendar: &[String],
    range: std::ops::Range<usize>,
) -> Result<StockHistory> {
    let (mut rd, cols) = open_csv(path)?;
    let mut h = StockHistory::default();
    let (mut factor, mut prev_close, mut float_shares) = (1.0f64, f64::NAN, f64::NAN);
    // The last valid row's (raw close, adjusted close), and whether there was one.
    let mut last_valid: Option<(f64, f64)> = None;
    let mut next_k = None;
    for rec in rd.records() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = rec.position().map_or(0, |p| p.line());
        let mut v = [f64::NAN; COLUMNS.len()];
        for (k, name) in COLUMNS.iter().enumerate().skip(1) {
            let s = rec.get(cols[k]).unwrap_or("").trim();
            if s.is_empty() {
                if REQUIRED.contains(&k) {
                    return Err(Error::Data(format!(
                        "{}:{line}: column {name} is empty",
                        path.display()
                    )));
                }
                continue;
            }
            v[k] = s.parse().map_err(|_| {
                Error::Data(format!(
                    "{}:{line}: column {name}: {s:?} is not a number",
                    path.display()
                ))
            })?;
        }
        let date = rec.get(cols[DATE]).unwrap_or("").trim();
        // scan_file checked every date, and the calendar holds them all.
        let k = calendar.partition_point(|d| d.as_str() < date);
        if prev_close > 0.0 && v[PRECLOSE] > 0.0 {
            factor *= prev_close / v[PRECLOSE];
        }
        let first_row = last_valid.is_none();
        let invalid = implausible_prices(v[OPEN], v[HIGH], v[LOW], v[CLOSE]) || v[VOLUME] < 0.0;
        prev_close = if invalid { f64::NAN } else { v[CLOSE] };
        let suspended = v[STATUS] == 0.0 || !v[VOLUME].is_finite() || v[VOLUME] <= 0.0;
        if !invalid && !suspended && v[TURN] > 0.0 {
            float_shares = v[VOLUME] / (v[TURN] / 100.0);
        }
        let in_range = k >= range.start && k < range.end;
        if invalid && in_range {
            h.invalid_rows += 1;
            let prices = [OPEN, HIGH, LOW, CLOSE].map(|c| (COLUMNS[c], v[c]));
            let why = row_problem(&prices, v[VOLUME]).unwrap_or_else(|| "impossible prices".into());
            *h.invalid_reasons.entry(why).or_default() += 1;
        }
        if !in_range {
            if !invalid {
                last_valid = Some((v[CLOSE], v[CLOSE] * factor));
            }
            continue;
        }
        let t = k - range.start;
        match next_k {
            None => h.first = t,
            Some(expect) => h.days.extend((expect..t).map(|_| None)),
        }
        next_k = Some(t + 1);
        if invalid {
            // Missing and untradable: flat at the last valid prices, or unlisted before any.
            h.days.push(last_valid.map(|(raw, adj)| Day {
                open: adj,
                high: adj,
                low: adj,
                close: adj,
                vwap: adj,
                raw_close: raw,
                volume: 0.0,
                turn: 0.0,
                suspended: true,
                st: v[IS_ST] == 1.0,
                limit_ref: f64::NAN,
                raw_open: f64::NAN,
                log_cap: (float_shares * raw).ln(),
                book_to_price: f64::NAN,
                earnings_yield: f64::NAN,
                member: true,
            }));
            continue;
        }
        last_valid = Some((v[CLOSE], v[CLOSE] * factor));
        let traded_vwap = v[AMOUNT] / v[VOLUME];
        let raw_vwap = if suspended {
            v[CLOSE]
        } else if traded_vwap.is_finite() {
            traded_vwap.max(v[LOW]).min(v[HIGH])
        } else {
            f64::NAN
        };
        let inverse = |x: f64| if x != 0.0 { 1.0 / x } else { f64::NAN };
        h.days.push(Some(Day {
            open: v[OPEN] * factor,
            high: v[HIGH] * factor,
            low: v[LOW] * factor,
            close: v[CLOSE] * factor,
            vwap: raw_vwap * factor,
            raw_close: v[CLOSE],
            volume: if suspended { 0.0 } else { v[VOLUME] },
            turn: v[TURN],
            suspended,
            st: v[IS_ST] == 1.0,
            limit_ref: if first_row { f64::NAN } else { v[PRECLOSE] },
            raw_open: v[OPEN],
            log_cap: (float_shares * v[CLOSE]).ln(),
            book_to_price: inverse(v[PB]),
            earnings_yield: inverse(v[PE]),
            member: true,
        }));
    }
    Ok(h)
}
