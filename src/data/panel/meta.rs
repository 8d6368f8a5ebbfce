//! `meta.json` ([`PanelMeta`]) and the format's constants: its version, the standard price
//! fields and the bits of `tradable.npy`. The metadata is checked on its own here; the arrays
//! are checked against it when a panel is written or opened.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::data::calendar::parse_date;
use crate::data::features::FEATURE_NAMES;

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
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
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
