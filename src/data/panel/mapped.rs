//! The opened panel: [`Panel::open`] maps each array file and checks it against `meta.json`
//! (presence, dtype, shape, industry indices) without reading it into memory; the accessors
//! borrow the mapped arrays.

use std::fs;
use std::path::{Path, PathBuf};

use super::files::{full_shape, panel_err, FileSpec, PanelFiles};
use super::meta::PanelMeta;
use super::view::PanelView;
use crate::data::calendar::parse_date;
use crate::data::features::FEATURE_NAMES;
use crate::data::npy::{MappedNpy, NpyArray, NpyDtype};
use crate::error::{Error, Result};

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
    /// `[T, N]` bit [`flags`](super::flags).
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

    /// Weights `[T, N]` of the benchmark called `name` (see `data::panel`'s module doc), copied
    /// out of `index.npy`'s last axis. The error lists the benchmarks the panel has.
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

    /// The content fingerprint of every array file, in the order of the table of `data::panel`'s
    /// module doc (docs/protocol.md: what a run records to recognize its panel).
    pub fn fingerprint(&self) -> Vec<crate::data::fingerprint::FileFingerprint> {
        let fp = |a: &dyn FileBytes| {
            let name = a
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::data::fingerprint::FileFingerprint::of(&name, a.bytes())
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
