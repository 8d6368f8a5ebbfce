//! `alphanet import qlib`: the qlib `dump_bin` layout.
//!
//! ```text
//! calendars/day.txt                 one YYYY-MM-DD per line; line k+1 is calendar index k
//! instruments/<name>.txt            CODE<TAB>from<TAB>to, a code may have several intervals
//! features/<code>/<field>.day.bin   little-endian f32: [start index, value at start, …]
//! ```
//!
//! Fields read: `open high low close` (back-adjusted), `volume` (raw shares), `factor`
//! (raw = adjusted / factor). The instrument file picks the codes (those with an interval that
//! overlaps the imported dates) and is the point-in-time universe: a listed day outside every
//! interval of its code gets [`flags::OUTSIDE_UNIVERSE`](super::panel::flags) (`all.txt`
//! intervals span each code's data, so `--instruments all` excludes nothing). Index codes
//! (SH000xxx, SZ399xxx) are not stocks; `SH000300`, when present, is the market for Beta.
//!
//! What qlib lacks is proxied, and the proxies go into `meta.json` ([`PROXIES`]).

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use super::builder::{
    calendar_range, implausible_prices, is_index_code, row_problem, Day, ImportSummary, Market,
    PanelBuilder, Provenance, RowAudit, StockHistory,
};
use super::calendar::parse_date;
use super::index_proxy::{
    check_against, csi500_weights, CSI500_INDEX, CSI500_PROXY, CSI500_WEIGHTING,
};
use super::industry::industries_for;
use super::panel::{write_panel, BenchmarkMeta, PanelArrays, PanelMeta, PRICE_FIELDS};
use crate::error::{Error, Result};

/// Trailing window (traded days) of the turnover and size proxies, and the fewest traded days
/// it needs.
const PROXY_WINDOW: usize = 250;
const PROXY_MIN_DAYS: usize = 20;
/// The benchmark whose returns are the market in Beta, when the dump has it.
pub const MARKET_INDEX: &str = "SH000300";
const FIELDS: [&str; 6] = ["open", "high", "low", "close", "volume", "factor"];

pub const PROXIES: [&str; 8] = [
    "vwap = (high + low + close) / 3 of adjusted prices (qlib has no amount)",
    "turn = volume / mean volume of the trailing 250 traded days (at least 20): relative volume, \
     not a turnover rate (qlib has no share counts)",
    "free_turn = turn (no free-float data)",
    "size = ln(mean of raw close x volume over the trailing 250 traded days (at least 20)): \
     traded value as a proxy for float market cap",
    "ST unknown: no stock is flagged ST, and limits use the non-ST ratio",
    "suspended = volume 0, or a row with missing or impossible prices after the first valid one \
     (prices carried forward; counted in provenance.row_checks)",
    "limit reference = previous adjusted close / today's factor (the ex-rights previous close)",
    "listed = from the first row of data; delisted stocks are absent from qlib dumps \
     (survivorship bias)",
];

pub struct QlibOptions {
    pub src: PathBuf,
    pub out: PathBuf,
    /// `all`, `csi300` (any name of a file under `instruments/`), or a path to such a file.
    pub instruments: String,
    pub start: Option<String>,
    pub end: Option<String>,
    /// CSRC industry snapshot CSV (codes like `sh.600000`).
    pub industry: Option<PathBuf>,
    /// A benchmark rebuilt from the data ([`CSI500_PROXY`]), with `instruments` `all`.
    pub benchmark: Option<String>,
}

fn data_err(msg: String) -> Error {
    Error::Data(msg)
}

/// Imports the qlib directory `o.src` into a new panel at `o.out`, one stock at a time.
pub fn import_qlib(o: &QlibOptions, progress: &ProgressBar) -> Result<ImportSummary> {
    crate::util::fs::check_output_creatable(&o.out)?;
    let csi300 = match o.benchmark.as_deref() {
        None => None,
        Some(CSI500_PROXY) if o.instruments == "all" => {
            let path = o.src.join("instruments").join("csi300.txt");
            if !path.is_file() {
                return Err(data_err(format!(
                    "--benchmark {CSI500_PROXY} excludes the CSI300 members, but {} is missing",
                    path.display()
                )));
            }
            Some(read_instruments(&path)?)
        }
        Some(CSI500_PROXY) => {
            return Err(Error::Config(format!(
                "--benchmark {CSI500_PROXY} needs --instruments all (the CSI500 lies outside the \
                 {} universe)",
                o.instruments
            )))
        }
        Some(other) => {
            return Err(Error::Config(format!(
                "--benchmark {other:?}: the benchmark this importer can rebuild is {CSI500_PROXY} \
                 (a universe file given to --instruments is its own benchmark)"
            )))
        }
    };
    let cal_path = o.src.join("calendars").join("day.txt");
    if !cal_path.is_file() {
        return Err(data_err(format!(
            "{}: no calendars/day.txt: not a qlib dump_bin directory (expected calendars/day.txt, \
             instruments/<name>.txt, features/<code>/<field>.day.bin)",
            o.src.display()
        )));
    }
    let calendar = read_calendar(&cal_path)?;
    let range = calendar_range(
        &calendar,
        o.start.as_deref(),
        o.end.as_deref(),
        &cal_path.display().to_string(),
    )?;
    let dates = calendar[range.clone()].to_vec();
    let inst_path = resolve_instruments(&o.src, &o.instruments)?;
    let intervals = read_instruments(&inst_path)?;
    let (first, last) = (&dates[0], &dates[dates.len() - 1]);
    let mut codes = Vec::new();
    let mut skipped = Vec::new();
    let mut dirs = Vec::new();
    for (code, spans) in &intervals {
        if is_index_code(code) || !spans.iter().any(|(a, b)| a <= last && b >= first) {
            continue;
        }
        match feature_dir(&o.src, code) {
            Some(d) => {
                codes.push(code.clone());
                dirs.push(d);
            }
            None => skipped.push(code.clone()),
        }
    }
    if codes.is_empty() {
        return Err(data_err(format!(
            "{}: no stock with data in {first} .. {last} ({} codes listed, {} without a features/ directory)",
            inst_path.display(),
            intervals.len(),
            skipped.len()
        )));
    }
    let (industry_names, industry_of, industry_note, industry_warning) =
        industries_for(o.industry.as_deref(), &codes)?;
    let mut warnings: Vec<String> = industry_warning.into_iter().collect();
    let mut builder = PanelBuilder::new(dates, codes.clone(), industry_of, false);
    progress.set_length(codes.len() as u64);
    let mut audit = RowAudit::default();
    for (i, (code, dir)) in codes.iter().zip(&dirs).enumerate() {
        let bins = StockBins::read(dir, calendar.len())?;
        let h = bins.history(&calendar, range.clone(), &intervals[code]);
        audit.add(code, &h);
        builder.add_stock(i, &h);
        progress.inc(1);
    }
    let audit_json = audit.finish();
    let market = match feature_dir(&o.src, MARKET_INDEX) {
        Some(dir) => Market::Index {
            code: MARKET_INDEX.into(),
            returns: index_returns(&dir, calendar.len(), range.clone())?,
        },
        None => {
            warnings.push(format!(
                "{} has no {MARKET_INDEX} index (features/{}): Beta uses the cap-weighted mean \
                 return of the panel's stocks instead (recorded in meta.json)",
                o.src.display(),
                MARKET_INDEX.to_ascii_lowercase()
            ));
            Market::CapWeighted
        }
    };
    let mut proxies: Vec<String> = PROXIES.iter().map(|s| s.to_string()).collect();
    proxies.push(industry_note);
    let n_stocks = codes.len();
    let (mut meta, mut arrays) = builder.finish(
        market,
        Provenance {
            source: "qlib".into(),
            benchmark: (o.instruments != "all").then(|| benchmark_name(&inst_path)),
            industry_names,
            proxies,
            details: serde_json::json!({
                "importer": "alphanet import qlib",
                "src": o.src.display().to_string(),
                "instruments": inst_path.display().to_string(),
                "start": o.start,
                "end": o.end,
                "industry_file": o.industry.as_ref().map(|p| p.display().to_string()),
                "skipped_codes_without_data": skipped,
                "row_checks": audit_json,
            }),
        },
    );
    if let Some(csi300) = &csi300 {
        let index = feature_dir(&o.src, CSI500_INDEX)
            .map(|dir| index_returns(&dir, calendar.len(), range.clone()))
            .transpose()?;
        warnings.push(add_csi500_proxy(&mut meta, &mut arrays, csi300, index));
    }
    write_panel(&o.out, &meta, &arrays)?;
    Ok(ImportSummary {
        n_dates: meta.n_dates(),
        n_stocks,
        skipped,
        missing_rows: 0,
        audit,
        warnings,
    })
}

/// Writes the [`CSI500_PROXY`] benchmark into the panel's arrays and meta, its check against the
/// index's returns (when the dump has them) into the provenance; returns the line that says how
/// close it is.
fn add_csi500_proxy(
    meta: &mut PanelMeta,
    arrays: &mut PanelArrays,
    csi300: &Intervals,
    index: Option<Vec<f64>>,
) -> String {
    let (dates, n) = (&meta.dates, meta.codes.len());
    let mut excluded = vec![false; dates.len() * n];
    for (i, code) in meta.codes.iter().enumerate() {
        for (a, b) in csi300.get(code).into_iter().flatten() {
            let from = dates.partition_point(|d| d < a);
            let to = dates.partition_point(|d| d <= b);
            for t in from..to {
                excluded[t * n + i] = true;
            }
        }
    }
    let w = csi500_weights(dates, &arrays.tradable, &arrays.size, &excluded, n);
    let p = PRICE_FIELDS.len();
    let close_field = PRICE_FIELDS
        .iter()
        .position(|f| *f == "close")
        .expect("close");
    let close: Vec<f32> = arrays.price.chunks(p).map(|c| c[close_field]).collect();
    let check = index.and_then(|r| check_against(dates, &w, &close, n, CSI500_INDEX, &r));
    arrays.index = Some(w);
    meta.benchmarks = vec![BenchmarkMeta {
        name: CSI500_PROXY.into(),
        weighting: CSI500_WEIGHTING.into(),
    }];
    let line = match &check {
        Some(c) => format!(
            "{CSI500_PROXY} is a proxy of the CSI500 (no membership file): its daily return against \
             {CSI500_INDEX}'s over {} .. {}: correlation {:.3}, tracking error {:.1}% a year, \
             annual return {:.1}% vs {:.1}% (meta.json provenance.benchmark_check)",
            c.first_date,
            c.last_date,
            c.correlation,
            100.0 * c.tracking_error,
            100.0 * c.proxy_annual_return,
            100.0 * c.index_annual_return
        ),
        None => format!(
            "{CSI500_PROXY} is a proxy of the CSI500 (no membership file), and the dump has no \
             {CSI500_INDEX} returns to check it against"
        ),
    };
    if let Some(obj) = meta.provenance.as_object_mut() {
        obj.insert("benchmark_check".into(), serde_json::json!(check));
    }
    line
}

/// `calendars/day.txt`: strictly increasing dates, one per line.
pub fn read_calendar(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut dates: Vec<String> = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let d = line.trim();
        if d.is_empty() {
            continue;
        }
        if parse_date(d).is_none() {
            return Err(data_err(format!(
                "{}:{}: {d:?} is not a YYYY-MM-DD date",
                path.display(),
                k + 1
            )));
        }
        if dates.last().is_some_and(|p| p.as_str() >= d) {
            return Err(data_err(format!(
                "{}:{}: {d} does not follow {} (dates must increase)",
                path.display(),
                k + 1,
                dates[dates.len() - 1]
            )));
        }
        dates.push(d.to_string());
    }
    if dates.is_empty() {
        return Err(data_err(format!("{}: no dates", path.display())));
    }
    Ok(dates)
}

/// The benchmark a universe file stands for: its file stem (`instruments/csi300.txt` → `csi300`).
fn benchmark_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "universe".into())
}

/// `--instruments` as a path: a name of `instruments/<name>.txt`, else a file path.
fn resolve_instruments(src: &Path, arg: &str) -> Result<PathBuf> {
    let named = src.join("instruments").join(format!("{arg}.txt"));
    if named.is_file() {
        return Ok(named);
    }
    let path = PathBuf::from(arg);
    if path.is_file() {
        return Ok(path);
    }
    Err(Error::Config(format!(
        "--instruments {arg}: neither {} nor a file {arg} exists (use all, csi300 or a path to \
         a CODE<TAB>from<TAB>to file)",
        named.display()
    )))
}

/// Code → its membership intervals `[from, to]` (inclusive dates), codes sorted.
pub type Intervals = BTreeMap<String, Vec<(String, String)>>;

/// An instruments file: `CODE<TAB>from<TAB>to` per line (any whitespace separates).
pub fn read_instruments(path: &Path) -> Result<Intervals> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out: Intervals = BTreeMap::new();
    for (k, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            data_err(format!(
                "{}:{}: {why} in {line:?} (expected CODE<TAB>YYYY-MM-DD<TAB>YYYY-MM-DD)",
                path.display(),
                k + 1
            ))
        };
        let [code, from, to] = parts[..] else {
            return Err(bad(&format!("{} fields", parts.len())));
        };
        if parse_date(from).is_none() || parse_date(to).is_none() {
            return Err(bad("a date that is not YYYY-MM-DD"));
        }
        if from > to {
            return Err(bad("an interval that ends before it starts"));
        }
        out.entry(code.to_ascii_uppercase())
            .or_default()
            .push((from.to_string(), to.to_string()));
    }
    if out.is_empty() {
        return Err(data_err(format!("{}: no instruments", path.display())));
    }
    Ok(out)
}

/// `features/<code>`, upper- or lower-case (qlib writes lower-case directories).
fn feature_dir(src: &Path, code: &str) -> Option<PathBuf> {
    [code.to_string(), code.to_ascii_lowercase()]
        .into_iter()
        .map(|c| src.join("features").join(c))
        .find(|d| d.is_dir())
}

/// One `.day.bin`: its start calendar index and values.
fn read_bin(path: &Path, cal_len: usize) -> Result<(usize, Vec<f32>)> {
    let bytes = fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            data_err(format!(
                "{}: missing (each code needs {} .day.bin)",
                path.display(),
                FIELDS.join(", ")
            ))
        } else {
            Error::io(path, e)
        }
    })?;
    if bytes.len() < 4 || bytes.len() % 4 != 0 {
        return Err(data_err(format!(
            "{}: {} bytes is not a start index plus whole float32 values (truncated file?)",
            path.display(),
            bytes.len()
        )));
    }
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let s = v[0];
    if !(s.is_finite() && s >= 0.0 && s.fract() == 0.0) {
        return Err(data_err(format!(
            "{}: element 0 (the start calendar index) is {s}, not an index",
            path.display()
        )));
    }
    let start = s as usize;
    let rows = v.len() - 1;
    if start + rows > cal_len {
        return Err(data_err(format!(
            "{}: values cover calendar indices {start}..{} but calendars/day.txt has {cal_len} \
             dates: the code's data lies outside the calendar range",
            path.display(),
            start + rows
        )));
    }
    Ok((start, v[1..].to_vec()))
}

/// The fields of one code, checked to share start index and length.
struct StockBins {
    start: usize,
    /// open, high, low, close, volume, factor.
    f: [Vec<f32>; 6],
}

impl StockBins {
    fn read(dir: &Path, cal_len: usize) -> Result<StockBins> {
        let mut start = 0;
        let mut f: [Vec<f32>; 6] = Default::default();
        for (k, name) in FIELDS.iter().enumerate() {
            let path = dir.join(format!("{name}.day.bin"));
            let (s, v) = read_bin(&path, cal_len)?;
            if k > 0 && (s != start || v.len() != f[0].len()) {
                return Err(data_err(format!(
                    "{}: starts at calendar index {s} with {} values, but {}.day.bin starts at \
                     {start} with {}: truncated or misaligned file",
                    path.display(),
                    v.len(),
                    FIELDS[0],
                    f[0].len()
                )));
            }
            start = s;
            f[k] = v;
        }
        Ok(StockBins { start, f })
    }

    /// The stock's days on the panel calendar `range` of `calendar`; proxies look back before
    /// the range where the file has data.
    fn history(
        &self,
        calendar: &[String],
        range: std::ops::Range<usize>,
        member: &[(String, String)],
    ) -> StockHistory {
        let [open, high, low, close, volume, factor] = &self.f;
        let rows = close.len();
        let mut window: VecDeque<(f64, f64)> = VecDeque::new();
        let (mut sum_vol, mut sum_value) = (0.0, 0.0);
        // The last valid (adjusted close, factor).
        let mut last: Option<(f64, f64)> = None;
        let mut days = Vec::new();
        let (mut invalid_rows, mut no_price_rows) = (0, 0);
        let mut invalid_reasons = std::collections::BTreeMap::new();
        let first = self.start.max(range.start);
        for j in 0..rows {
            let k = self.start + j;
            let px = [open[j], high[j], low[j], close[j], factor[j]].map(|x| x as f64);
            let vol = volume[j] as f64;
            let finite = px.iter().all(|x| x.is_finite());
            let valid = finite && px[4] > 0.0 && !implausible_prices(px[0], px[1], px[2], px[3]);
            if k >= first && k < range.end {
                if px.iter().any(|x| x.is_nan()) {
                    no_price_rows += 1;
                } else if let Some(why) = row_problem(&named(px), vol) {
                    invalid_rows += 1;
                    *invalid_reasons.entry(why).or_default() += 1;
                }
            }
            let traded = valid && vol.is_finite() && vol > 0.0;
            if traded {
                window.push_back((vol, px[3] / px[4] * vol));
                sum_vol += vol;
                sum_value += px[3] / px[4] * vol;
                if window.len() > PROXY_WINDOW {
                    let (v, a) = window.pop_front().expect("window is not empty");
                    sum_vol -= v;
                    sum_value -= a;
                }
            }
            let enough = window.len() >= PROXY_MIN_DAYS;
            let mean = |s: f64| {
                if enough {
                    s / window.len() as f64
                } else {
                    f64::NAN
                }
            };
            let day = match (valid, last) {
                (true, _) => {
                    let [o, h, l, c, fac] = px;
                    Some(Day {
                        open: o,
                        high: h,
                        low: l,
                        close: c,
                        vwap: (h + l + c) / 3.0,
                        raw_close: c / fac,
                        volume: if vol.is_finite() { vol } else { 0.0 },
                        turn: vol / mean(sum_vol),
                        suspended: !traded,
                        st: false,
                        limit_ref: last.map_or(f64::NAN, |(pc, _)| pc / fac),
                        raw_open: o / fac,
                        log_cap: mean(sum_value).ln(),
                        book_to_price: f64::NAN,
                        earnings_yield: f64::NAN,
                        member: false,
                    })
                }
                (false, Some((pc, fac))) => Some(Day {
                    open: pc,
                    high: pc,
                    low: pc,
                    close: pc,
                    vwap: pc,
                    raw_close: pc / fac,
                    volume: 0.0,
                    turn: 0.0,
                    suspended: true,
                    st: false,
                    limit_ref: f64::NAN,
                    raw_open: f64::NAN,
                    log_cap: mean(sum_value).ln(),
                    book_to_price: f64::NAN,
                    earnings_yield: f64::NAN,
                    member: false,
                }),
                (false, None) => None,
            };
            if valid {
                last = Some((px[3], px[4]));
            }
            if k >= first && k < range.end {
                let date = calendar[k].as_str();
                days.push(day.map(|d| {
                    Day {
                        member: member
                            .iter()
                            .any(|(a, b)| a.as_str() <= date && date <= b.as_str()),
                        ..d
                    }
                }));
            }
        }
        StockHistory {
            first: first.min(range.end) - range.start,
            days,
            invalid_rows,
            invalid_reasons,
            no_price_rows,
        }
    }
}

/// Daily close-to-close returns of an index over the panel `range` (NaN where unknown).
fn index_returns(dir: &Path, cal_len: usize, range: std::ops::Range<usize>) -> Result<Vec<f64>> {
    let (start, close) = read_bin(&dir.join("close.day.bin"), cal_len)?;
    let at = |k: usize| {
        k.checked_sub(start)
            .and_then(|j| close.get(j))
            .map_or(f64::NAN, |&c| c as f64)
    };
    Ok(range
        .map(|k| {
            if k == 0 {
                f64::NAN
            } else {
                at(k) / at(k - 1) - 1.0
            }
        })
        .collect())
}

/// A row's open, high, low, close and factor with the names `row_problem` reports them by.
fn named(px: [f64; 5]) -> [(&'static str, f64); 5] {
    let [o, h, l, c, f] = px;
    [
        ("open", o),
        ("high", h),
        ("low", l),
        ("close", c),
        ("factor", f),
    ]
}
