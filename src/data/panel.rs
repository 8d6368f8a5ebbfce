//! The panel: a directory of `.npy` arrays plus `meta.json`, memory-mapped without parsing (docs/data.md).
//! This module is the file format only: dates are in [`super::calendar`], the features in
//! [`super::features`], price limits in [`super::limits`], styles in [`super::styles`].
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

use super::calendar::parse_date;
use super::features::FEATURE_NAMES;
use super::npy::{write_npy, MappedNpy, NpyArray, NpyDtype};
use crate::error::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

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

/// An array file with its dtype and the trailing dims expected after `[T, N]`.
struct FileSpec {
    name: &'static str,
    descr: &'static str,
    inner: Vec<usize>,
}

/// The array files of the module table, by name; the optional ones exist exactly when
/// `meta.json` says so.
struct PanelFiles {
    features: FileSpec,
    price: FileSpec,
    tradable: FileSpec,
    styles: FileSpec,
    industry: FileSpec,
    size: FileSpec,
    oracle: Option<FileSpec>,
    index: Option<FileSpec>,
}

impl PanelFiles {
    fn of(meta: &PanelMeta) -> PanelFiles {
        let spec = |name, descr, inner| FileSpec { name, descr, inner };
        PanelFiles {
            features: spec("features.npy", f32::DESCR, vec![FEATURE_NAMES.len()]),
            price: spec("price.npy", f32::DESCR, vec![meta.price_fields.len()]),
            tradable: spec("tradable.npy", u8::DESCR, vec![]),
            styles: spec("styles.npy", f32::DESCR, vec![meta.style_names.len()]),
            industry: spec("industry.npy", i16::DESCR, vec![]),
            size: spec("size.npy", f32::DESCR, vec![]),
            oracle: meta
                .oracle
                .is_some()
                .then(|| spec("oracle.npy", f32::DESCR, vec![])),
            index: (!meta.benchmarks.is_empty())
                .then(|| spec("index.npy", f32::DESCR, vec![meta.benchmarks.len()])),
        }
    }
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
    crate::util::fs::write_dir_atomically(dir, |tmp| write_files(tmp, meta, arrays))
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
    let files = PanelFiles::of(meta);
    put(tmp, meta, &files.features, &a.features)?;
    put(tmp, meta, &files.price, &a.price)?;
    put(tmp, meta, &files.tradable, &a.tradable)?;
    put(tmp, meta, &files.styles, &a.styles)?;
    put(tmp, meta, &files.industry, &a.industry)?;
    put(tmp, meta, &files.size, &a.size)?;
    if let (Some(spec), Some(oracle)) = (&files.oracle, &a.oracle) {
        put(tmp, meta, spec, oracle)?;
    }
    if let (Some(spec), Some(index)) = (&files.index, &a.index) {
        put(tmp, meta, spec, index)?;
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

        let files = PanelFiles::of(&meta);
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
        let features = open_checked(&files.features)?.into_typed()?;
        let price = open_checked(&files.price)?.into_typed()?;
        let tradable = open_checked(&files.tradable)?.into_typed()?;
        let styles = open_checked(&files.styles)?.into_typed()?;
        let industry: NpyArray<i16> = open_checked(&files.industry)?.into_typed()?;
        let size = open_checked(&files.size)?.into_typed()?;
        let oracle = files
            .oracle
            .as_ref()
            .map(|s| open_checked(s)?.into_typed())
            .transpose()?;
        let index = files
            .index
            .as_ref()
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
