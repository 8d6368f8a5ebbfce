//! The panel: a directory of `.npy` arrays plus `meta.json`, memory-mapped without parsing (docs/data.md).
//!
//! | file | dtype, shape |
//! |---|---|
//! | `meta.json` | [`PanelMeta`] |
//! | `features.npy` | f32 `[T, N, 15]`, the features of docs/features.md in [`FEATURE_NAMES`] order |
//! | `price.npy` | f32 `[T, N, P]`, fields named by `meta.price_fields` (adjusted, except `raw_close`) |
//! | `tradable.npy` | u8 `[T, N]`, bit [`flags`] |
//! | `styles.npy` | f32 `[T, N, K]`, style exposures named by `meta.style_names` |
//! | `industry.npy` | i16 `[T, N]`, index into `meta.industry_names`, −1 unknown |
//! | `size.npy` | f32 `[T, N]`, log market cap |
//! | `oracle.npy` (optional) | f32 `[T, N]`, the known part of the label's expectation (synthetic panels) |
//! | `index.npy` (optional) | f32 `[T, N, M]`, weights of the M benchmarks named by `meta.benchmarks` |
//!
//! **Benchmarks.** `index.npy[t, i, m]` is stock i's weight in benchmark m on date t (its
//! membership that day, point in time, weighted as `meta.benchmarks[m].weighting` says). A
//! row sums to 1 over the members and is 0 for non-members; a date whose row is all zero has no
//! known composition. The file exists exactly when `meta.benchmarks` is non-empty.
//!
//! Writers build the whole directory under a hidden sibling and rename it into place, so a
//! crash never leaves something that opens as a valid panel.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::npy::{write_npy, MappedNpy, NpyArray, NpyDtype};
use crate::error::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

/// The 15 raw features of docs/features.md, in channel order.
pub const FEATURE_NAMES: [&str; 15] = [
    "return1",
    "open",
    "close",
    "high",
    "low",
    "volume",
    "vwap",
    "turn",
    "free_turn",
    "close/free_turn",
    "open/turn",
    "volume/low",
    "vwap/high",
    "low/high",
    "vwap/close",
];

/// The 15 features of docs/features.md for one stock-day (`return1` NaN when there is no prior close).
#[allow(clippy::too_many_arguments)]
pub fn feature_row(
    ret1: f64,
    open: f64,
    close: f64,
    high: f64,
    low: f64,
    volume: f64,
    vwap: f64,
    turn: f64,
    free_turn: f64,
) -> [f32; 15] {
    [
        ret1,
        open,
        close,
        high,
        low,
        volume,
        vwap,
        turn,
        free_turn,
        close / free_turn,
        open / turn,
        volume / low,
        vwap / high,
        low / high,
        vwap / close,
    ]
    .map(|x| x as f32)
}

/// The standard price fields; all adjusted except `raw_close` (used for limit checks).
pub const PRICE_FIELDS: [&str; 6] = ["open", "high", "low", "close", "vwap", "raw_close"];

/// Bits of `tradable.npy`. A flag at date t describes date t itself: `LIMIT_UP_OPEN` at t means
/// t's open was at the up-limit.
pub mod flags {
    pub const LISTED: u8 = 1;
    pub const SUSPENDED: u8 = 2;
    /// ST or *ST/PT (special treatment, ±5% limit on the main board).
    pub const ST: u8 = 4;
    pub const LIMIT_UP_OPEN: u8 = 8;
    pub const LIMIT_DOWN_OPEN: u8 = 16;
    /// Not a member of the panel's point-in-time universe at t (e.g. CSI300 when imported with
    /// `--instruments csi300`); the stock's data is still there for pictures and labels.
    pub const OUTSIDE_UNIVERSE: u8 = 32;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OracleMeta {
    /// File name inside the panel directory (`oracle.npy`).
    pub file: String,
    pub description: String,
    /// Mean over dates of Spearman(oracle, raw label) on the evaluation universe.
    pub rank_ic_mean: f64,
}

/// One benchmark of `index.npy` (e.g. CSI300).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkMeta {
    /// What `alphanet enhance --benchmark` names it by, e.g. `csi300`.
    pub name: String,
    /// How members are weighted, e.g. "total market cap" or a documented proxy
    /// ("equal weight: the source has no market cap").
    pub weighting: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelMeta {
    pub format_version: u32,
    /// Where the data came from: "synth", "qlib", "baostock".
    pub source: String,
    /// Trading dates, `YYYY-MM-DD`, strictly increasing.
    pub dates: Vec<String>,
    /// Stock codes, unique (e.g. `SH600000`).
    pub codes: Vec<String>,
    pub feature_names: Vec<String>,
    pub price_fields: Vec<String>,
    pub style_names: Vec<String>,
    pub industry_names: Vec<String>,
    /// Documented proxies used for fields the source lacks (e.g. "vwap = (high+low+close)/3").
    #[serde(default)]
    pub proxies: Vec<String>,
    /// Styles of docs/data.md the source cannot support (left out, never filled with noise).
    #[serde(default)]
    pub missing_styles: Vec<String>,
    #[serde(default)]
    pub oracle: Option<OracleMeta>,
    /// Benchmarks whose weights `index.npy` holds, in its last axis.
    #[serde(default)]
    pub benchmarks: Vec<BenchmarkMeta>,
    /// Free-form: generator parameters, source paths, import options.
    #[serde(default)]
    pub provenance: serde_json::Value,
}

impl PanelMeta {
    pub fn n_dates(&self) -> usize {
        self.dates.len()
    }

    pub fn n_stocks(&self) -> usize {
        self.codes.len()
    }

    /// Checks the metadata on its own (arrays are checked against it separately).
    fn validate(&self) -> std::result::Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not supported (expected {FORMAT_VERSION}): re-create the panel with this version",
                self.format_version
            ));
        }
        if self.dates.is_empty() || self.codes.is_empty() {
            return Err(format!(
                "meta.json has {} dates and {} codes; a panel needs at least one of each",
                self.dates.len(),
                self.codes.len()
            ));
        }
        for (k, d) in self.dates.iter().enumerate() {
            if parse_date(d).is_none() {
                return Err(format!("dates[{k}] = {d:?} is not a valid YYYY-MM-DD date"));
            }
            if k > 0 && self.dates[k - 1] >= *d {
                return Err(format!(
                    "dates must be strictly increasing: dates[{}] = {} is followed by dates[{k}] = {d}",
                    k - 1,
                    self.dates[k - 1]
                ));
            }
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self.codes.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(format!(
                "code {dup:?} appears more than once in meta.json codes"
            ));
        }
        if self.feature_names != FEATURE_NAMES {
            return Err(format!(
                "feature_names must be the 15 features of docs/features.md in order {FEATURE_NAMES:?}, found {:?}",
                self.feature_names
            ));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self.price_fields.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(format!("price field {dup:?} appears more than once"));
        }
        if !self.price_fields.iter().any(|f| f == "vwap") {
            return Err(format!(
                "price_fields {:?} lacks \"vwap\", which the label needs (use a documented proxy such as (H+L+C)/3)",
                self.price_fields
            ));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self
            .benchmarks
            .iter()
            .find(|b| !seen.insert(b.name.as_str()))
        {
            return Err(format!("benchmark {:?} appears more than once", dup.name));
        }
        if self.industry_names.len() > i16::MAX as usize {
            return Err(format!(
                "{} industries do not fit an i16 index",
                self.industry_names.len()
            ));
        }
        Ok(())
    }
}

/// Owned arrays of a panel, for writers. Shapes as in the module table.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelArrays {
    pub features: Vec<f32>,
    pub price: Vec<f32>,
    pub tradable: Vec<u8>,
    pub styles: Vec<f32>,
    pub industry: Vec<i16>,
    pub size: Vec<f32>,
    pub oracle: Option<Vec<f32>>,
    /// `[T, N, M]` benchmark weights, present exactly when `meta.benchmarks` is non-empty.
    pub index: Option<Vec<f32>>,
}

impl PanelArrays {
    /// A borrowed view for the sample builders (`meta` must be the one these arrays belong to).
    pub fn view<'a>(&'a self, meta: &'a PanelMeta) -> PanelView<'a> {
        PanelView {
            n_dates: meta.n_dates(),
            n_stocks: meta.n_stocks(),
            n_styles: meta.style_names.len(),
            n_price_fields: meta.price_fields.len(),
            vwap_field: meta
                .price_fields
                .iter()
                .position(|f| f == "vwap")
                .unwrap_or(0),
            dates: &meta.dates,
            features: &self.features,
            price: &self.price,
            tradable: &self.tradable,
            styles: &self.styles,
            industry: &self.industry,
            size: &self.size,
        }
    }
}

/// Every array file with its dtype and the trailing dims expected after `[T, N]`.
struct FileSpec {
    name: &'static str,
    descr: &'static str,
    inner: Vec<usize>,
}

fn file_specs(meta: &PanelMeta) -> Vec<FileSpec> {
    let spec = |name, descr, inner| FileSpec { name, descr, inner };
    let mut v = vec![
        spec("features.npy", f32::DESCR, vec![FEATURE_NAMES.len()]),
        spec("price.npy", f32::DESCR, vec![meta.price_fields.len()]),
        spec("tradable.npy", u8::DESCR, vec![]),
        spec("styles.npy", f32::DESCR, vec![meta.style_names.len()]),
        spec("industry.npy", i16::DESCR, vec![]),
        spec("size.npy", f32::DESCR, vec![]),
    ];
    if meta.oracle.is_some() {
        v.push(spec("oracle.npy", f32::DESCR, vec![]));
    }
    if !meta.benchmarks.is_empty() {
        v.push(spec("index.npy", f32::DESCR, vec![meta.benchmarks.len()]));
    }
    v
}

fn full_shape(meta: &PanelMeta, inner: &[usize]) -> Vec<usize> {
    let mut s = vec![meta.n_dates(), meta.n_stocks()];
    s.extend_from_slice(inner);
    s
}

fn panel_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Panel {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Writes a new panel at `dir` atomically: refuses an existing `dir`, writes into the sibling
/// `.<name>.tmp-<pid>`, then renames. On any error the temp dir is removed.
pub fn write_panel(dir: &Path, meta: &PanelMeta, arrays: &PanelArrays) -> Result<()> {
    if dir.exists() {
        return Err(Error::Exists {
            path: dir.to_path_buf(),
        });
    }
    meta.validate()
        .map_err(|m| panel_err(dir, format!("refusing to write: {m}")))?;
    if meta.oracle.is_some() != arrays.oracle.is_some() {
        return Err(panel_err(
            dir,
            "refusing to write: meta.oracle and the oracle array must be given together",
        ));
    }
    if meta.benchmarks.is_empty() == arrays.index.is_some() {
        return Err(panel_err(
            dir,
            "refusing to write: meta.benchmarks and the index array must be given together",
        ));
    }
    crate::fsutil::write_dir_atomically(dir, |tmp| write_files(tmp, meta, arrays))
}

fn write_files(tmp: &Path, meta: &PanelMeta, a: &PanelArrays) -> Result<()> {
    fn put<T: NpyDtype>(tmp: &Path, meta: &PanelMeta, spec: &FileSpec, data: &[T]) -> Result<()> {
        let shape = full_shape(meta, &spec.inner);
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(panel_err(
                tmp,
                format!(
                    "refusing to write {}: meta.json implies shape {shape:?} ({n} values), the array has {}",
                    spec.name,
                    data.len()
                ),
            ));
        }
        write_npy(&tmp.join(spec.name), &shape, data)
    }
    let specs = file_specs(meta);
    put(tmp, meta, &specs[0], &a.features)?;
    put(tmp, meta, &specs[1], &a.price)?;
    put(tmp, meta, &specs[2], &a.tradable)?;
    put(tmp, meta, &specs[3], &a.styles)?;
    put(tmp, meta, &specs[4], &a.industry)?;
    put(tmp, meta, &specs[5], &a.size)?;
    let mut optional = specs[6..].iter();
    if let Some(oracle) = &a.oracle {
        put(tmp, meta, optional.next().expect("oracle spec"), oracle)?;
    }
    if let Some(index) = &a.index {
        put(tmp, meta, optional.next().expect("index spec"), index)?;
    }
    let json =
        serde_json::to_vec_pretty(meta).map_err(|e| panel_err(tmp, format!("meta.json: {e}")))?;
    let meta_path = tmp.join("meta.json");
    fs::write(&meta_path, json).map_err(|e| Error::io(&meta_path, e))
}

/// A memory-mapped panel whose files were checked against `meta.json` at open.
pub struct Panel {
    dir: PathBuf,
    meta: PanelMeta,
    features: NpyArray<f32>,
    price: NpyArray<f32>,
    tradable: NpyArray<u8>,
    styles: NpyArray<f32>,
    industry: NpyArray<i16>,
    size: NpyArray<f32>,
    oracle: Option<NpyArray<f32>>,
    index: Option<NpyArray<f32>>,
    vwap_field: usize,
}

const FIX: &str = "re-create the panel (alphanet synth / alphanet import)";

impl Panel {
    /// Opens and validates the panel at `dir`; no array is read into memory.
    pub fn open(dir: &Path) -> Result<Panel> {
        if !dir.is_dir() {
            return Err(panel_err(
                dir,
                "no such directory; create a panel with `alphanet synth --out DIR` or an importer",
            ));
        }
        let meta_path = dir.join("meta.json");
        let text = fs::read_to_string(&meta_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                panel_err(
                    dir,
                    format!("missing meta.json: not a panel directory; {FIX}"),
                )
            } else {
                Error::io(&meta_path, e)
            }
        })?;
        let meta: PanelMeta = serde_json::from_str(&text)
            .map_err(|e| panel_err(&meta_path, format!("invalid meta.json: {e}; {FIX}")))?;
        meta.validate()
            .map_err(|m| panel_err(&meta_path, format!("{m}; {FIX}")))?;

        let specs = file_specs(&meta);
        let open_checked = |spec: &FileSpec| -> Result<MappedNpy> {
            let path = dir.join(spec.name);
            if !path.is_file() {
                let what = if path.is_dir() {
                    format!("{} is a directory, not a file", spec.name)
                } else if path.symlink_metadata().is_ok() {
                    format!("{} is not a regular file (a broken link?)", spec.name)
                } else {
                    format!("missing {}", spec.name)
                };
                return Err(panel_err(
                    dir,
                    format!(
                        "{what} (expected {} {:?}); {FIX}",
                        spec.descr,
                        full_shape(&meta, &spec.inner)
                    ),
                ));
            }
            let want = full_shape(&meta, &spec.inner);
            let check_shape = |shape: &[usize]| {
                if shape == want.as_slice() {
                    return Ok(());
                }
                Err(panel_err(
                    &path,
                    format!(
                        "shape: expected {want:?} (meta.json: {} dates × {} codes{}), found {shape:?}; {FIX}",
                        meta.n_dates(),
                        meta.n_stocks(),
                        spec.inner.first().map(|k| format!(" × {k}")).unwrap_or_default(),
                    ),
                ))
            };
            let npy =
                MappedNpy::open_expecting(&path, spec.descr, check_shape).map_err(|e| match e {
                    Error::Npy { path, msg } => panel_err(&path, format!("{msg}; {FIX}")),
                    e => e,
                })?;
            Ok(npy)
        };
        let features = open_checked(&specs[0])?.into_typed()?;
        let price = open_checked(&specs[1])?.into_typed()?;
        let tradable = open_checked(&specs[2])?.into_typed()?;
        let styles = open_checked(&specs[3])?.into_typed()?;
        let industry: NpyArray<i16> = open_checked(&specs[4])?.into_typed()?;
        let size = open_checked(&specs[5])?.into_typed()?;
        let mut optional = specs[6..].iter();
        let oracle = match meta.oracle {
            Some(_) => optional
                .next()
                .map(|s| open_checked(s)?.into_typed())
                .transpose()?,
            None => None,
        };
        let index = optional
            .next()
            .map(|s| open_checked(s)?.into_typed())
            .transpose()?;

        let n_ind = meta.industry_names.len() as i16;
        if let Some(bad) = industry.as_slice().iter().find(|&&k| k < -1 || k >= n_ind) {
            return Err(panel_err(
                industry.path(),
                format!("industry index {bad} outside -1..{n_ind} (meta.json lists {n_ind} industries); {FIX}"),
            ));
        }
        let vwap_field = meta
            .price_fields
            .iter()
            .position(|f| f == "vwap")
            .unwrap_or(0);
        Ok(Panel {
            dir: dir.to_path_buf(),
            meta,
            features,
            price,
            tradable,
            styles,
            industry,
            size,
            oracle,
            index,
            vwap_field,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn meta(&self) -> &PanelMeta {
        &self.meta
    }
    pub fn n_dates(&self) -> usize {
        self.meta.n_dates()
    }
    pub fn n_stocks(&self) -> usize {
        self.meta.n_stocks()
    }
    pub fn n_styles(&self) -> usize {
        self.meta.style_names.len()
    }
    /// `[T, N, 15]`.
    pub fn features(&self) -> &[f32] {
        self.features.as_slice()
    }
    /// `[T, N, P]`, P = `meta.price_fields.len()`.
    pub fn price(&self) -> &[f32] {
        self.price.as_slice()
    }
    pub fn price_field(&self, name: &str) -> Option<usize> {
        self.meta.price_fields.iter().position(|f| f == name)
    }
    /// `[T, N]` bit [`flags`].
    pub fn tradable(&self) -> &[u8] {
        self.tradable.as_slice()
    }
    /// `[T, N, K]`.
    pub fn styles(&self) -> &[f32] {
        self.styles.as_slice()
    }
    /// `[T, N]`.
    pub fn industry(&self) -> &[i16] {
        self.industry.as_slice()
    }
    /// `[T, N]`.
    pub fn size(&self) -> &[f32] {
        self.size.as_slice()
    }
    /// `[T, N]`, synthetic panels only.
    pub fn oracle(&self) -> Option<&[f32]> {
        self.oracle.as_ref().map(|o| o.as_slice())
    }

    /// Weights `[T, N]` of the benchmark called `name` (see the module doc), copied out of
    /// `index.npy`'s last axis. The error lists the benchmarks the panel has.
    pub fn benchmark_weights(&self, name: &str) -> Result<Vec<f32>> {
        let names: Vec<&str> = self
            .meta
            .benchmarks
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        let m = names.iter().position(|&b| b == name).ok_or_else(|| {
            Error::Config(if names.is_empty() {
                format!(
                    "--benchmark {name}: panel {} has no benchmark (meta.json `benchmarks` is empty, no index.npy); \
                     re-create it with an importer that writes index membership, or `alphanet synth`",
                    self.dir.display()
                )
            } else {
                format!(
                    "--benchmark {name}: panel {} has benchmarks {names:?}",
                    self.dir.display()
                )
            })
        })?;
        let index = self
            .index
            .as_ref()
            .expect("index.npy opened with meta.benchmarks");
        Ok(index
            .as_slice()
            .iter()
            .skip(m)
            .step_by(names.len())
            .copied()
            .collect())
    }

    /// Index of `date` (`YYYY-MM-DD`); the error gives the panel's range and the nearest dates.
    pub fn date_index(&self, date: &str) -> Result<usize> {
        let dates = &self.meta.dates;
        match dates.binary_search_by(|d| d.as_str().cmp(date)) {
            Ok(k) => Ok(k),
            Err(k) => {
                let (first, last) = (&dates[0], &dates[dates.len() - 1]);
                let why = if parse_date(date).is_none() {
                    "is not a YYYY-MM-DD date".to_string()
                } else if k == 0 || k == dates.len() {
                    "is outside the panel".to_string()
                } else {
                    format!(
                        "is not a trading day of the panel (nearest: {} before, {} after)",
                        dates[k - 1],
                        dates[k]
                    )
                };
                Err(Error::Data(format!(
                    "date {date} {why}; panel {} covers {first}..{last}",
                    self.dir.display()
                )))
            }
        }
    }

    /// The dates of `range` on which no feature of any stock is finite (a date the source has no
    /// data for): no picture that spans one is usable.
    pub fn dates_without_features(&self, range: std::ops::Range<usize>) -> Vec<usize> {
        let block = self.n_stocks() * FEATURE_NAMES.len();
        let features = self.features();
        range
            .filter(|&t| t < self.n_dates())
            .filter(|&t| {
                !features[t * block..(t + 1) * block]
                    .iter()
                    .any(|x| x.is_finite())
            })
            .collect()
    }

    /// The content fingerprint of every array file, in the order of the module table
    /// (docs/protocol.md: what a run records to recognize its panel).
    pub fn fingerprint(&self) -> Vec<super::fingerprint::FileFingerprint> {
        let fp = |a: &dyn FileBytes| {
            let name = a
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            super::fingerprint::FileFingerprint::of(&name, a.bytes())
        };
        let mut out = vec![
            fp(&self.features),
            fp(&self.price),
            fp(&self.tradable),
            fp(&self.styles),
            fp(&self.industry),
            fp(&self.size),
        ];
        out.extend(self.oracle.as_ref().map(|o| fp(o)));
        out.extend(self.index.as_ref().map(|o| fp(o)));
        out
    }

    /// The borrowed view the sample builders work on.
    pub fn view(&self) -> PanelView<'_> {
        PanelView {
            n_dates: self.n_dates(),
            n_stocks: self.n_stocks(),
            n_styles: self.n_styles(),
            n_price_fields: self.meta.price_fields.len(),
            vwap_field: self.vwap_field,
            dates: &self.meta.dates,
            features: self.features(),
            price: self.price(),
            tradable: self.tradable(),
            styles: self.styles(),
            industry: self.industry(),
            size: self.size(),
        }
    }
}

/// A mapped file's path and bytes, whatever its element type.
trait FileBytes {
    fn path(&self) -> &Path;
    fn bytes(&self) -> &[u8];
}

impl<T: NpyDtype> FileBytes for NpyArray<T> {
    fn path(&self) -> &Path {
        NpyArray::path(self)
    }
    fn bytes(&self) -> &[u8] {
        self.file_bytes()
    }
}

/// The arrays sample building needs, borrowed from a mapped [`Panel`] or in-memory [`PanelArrays`].
#[derive(Clone, Copy)]
pub struct PanelView<'a> {
    pub n_dates: usize,
    pub n_stocks: usize,
    pub n_styles: usize,
    pub n_price_fields: usize,
    /// Index of `vwap` within the price fields.
    pub vwap_field: usize,
    pub dates: &'a [String],
    pub features: &'a [f32],
    pub price: &'a [f32],
    pub tradable: &'a [u8],
    pub styles: &'a [f32],
    /// `[T, N]`, −1 unknown.
    pub industry: &'a [i16],
    /// `[T, N]` log market cap.
    pub size: &'a [f32],
}

impl PanelView<'_> {
    pub fn flags(&self, t: usize, i: usize) -> u8 {
        self.tradable[t * self.n_stocks + i]
    }
    pub fn vwap(&self, t: usize, i: usize) -> f32 {
        self.price[(t * self.n_stocks + i) * self.n_price_fields + self.vwap_field]
    }
}

/// Days since 1970-01-01 of a strict `YYYY-MM-DD` date, or `None`.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| s[r].parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_len[m as usize - 1] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (inverse of [`parse_date`]).
pub fn format_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Day of week of a day count, Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7)
}

/// The daily price limit as a fraction (docs/data.md): ±20% on STAR (688xxx) and on ChiNext
/// (300xxx/301xxx) from 2020-08-24 (ST included there), else ±5% for ST, else ±10%.
/// `code` may carry any exchange prefix/suffix (`SZ300001`, `sz.300001`, `300001.SZ`).
pub fn limit_ratio(code: &str, date: &str, st: bool) -> f64 {
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let star = digits.starts_with("688");
    let chinext = digits.starts_with("300") || digits.starts_with("301");
    if star || (chinext && date >= "2020-08-24") {
        0.20
    } else if st {
        0.05
    } else {
        0.10
    }
}

/// An exchange price: rounded half-up to 0.01 CNY.
pub fn round_price(p: f64) -> f64 {
    (p * 100.0 + 0.5).floor() / 100.0
}

/// The (down, up) limit prices after a raw previous close. Computed in integer cents so that a
/// close stored in f32 (11.15 → 11.1499996) still gives the exchange's half-up result (12.27).
pub fn limit_prices(prev_raw_close: f64, ratio: f64) -> (f64, f64) {
    let cents = (prev_raw_close * 100.0).round() as i64;
    let pct = (ratio * 100.0).round() as i64;
    let at = |p: i64| ((cents * p + 50).div_euclid(100)) as f64 / 100.0;
    (at(100 - pct), at(100 + pct))
}

/// `LIMIT_UP_OPEN` / `LIMIT_DOWN_OPEN` bits for a raw open against the limit prices
/// (half a tick of slack for prices stored in f32).
pub fn open_limit_flags(prev_raw_close: f64, raw_open: f64, ratio: f64) -> u8 {
    let (down, up) = limit_prices(prev_raw_close, ratio);
    let mut f = 0;
    if raw_open >= up - 0.005 {
        f |= flags::LIMIT_UP_OPEN;
    }
    if raw_open <= down + 0.005 {
        f |= flags::LIMIT_DOWN_OPEN;
    }
    f
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
    fn dates_round_trip_and_reject_garbage() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2016-01-04"), Some(16_804));
        assert_eq!(weekday(16_804), 0, "2016-01-04 was a Monday");
        for d in [-1000, 0, 16_804, 19_000, 20_000] {
            assert_eq!(parse_date(&format_date(d)), Some(d));
        }
        for bad in [
            "2016-02-30",
            "2015-02-29",
            "2016-13-01",
            "2016-1-04",
            "20160104",
            "2016-01-0x",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert!(parse_date("2016-02-29").is_some());
    }

    #[test]
    fn limits_follow_the_board_rules() {
        assert_eq!(limit_ratio("SH600000", "2019-01-02", false), 0.10);
        assert_eq!(limit_ratio("SH600000", "2019-01-02", true), 0.05);
        assert_eq!(limit_ratio("SZ300001", "2019-01-02", false), 0.10);
        assert_eq!(limit_ratio("sz.300001", "2020-08-24", true), 0.20);
        assert_eq!(limit_ratio("688001.SH", "2019-08-01", false), 0.20);
        assert_eq!(limit_prices(10.0, 0.1), (9.0, 11.0));
        assert_eq!(limit_prices(3.33, 0.1), (3.0, 3.66));
        assert_eq!(open_limit_flags(3.33, 3.66, 0.1), flags::LIMIT_UP_OPEN);
        assert_eq!(open_limit_flags(3.33, 3.65, 0.1), 0);
        assert_eq!(open_limit_flags(3.33, 3.0, 0.1), flags::LIMIT_DOWN_OPEN);
        assert_eq!(limit_prices(11.15f32 as f64, 0.1), (10.04, 12.27));
        assert_eq!(limit_prices(7.77, 0.05), (7.38, 8.16));
    }

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
}
