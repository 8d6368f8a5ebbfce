//! Writing a panel: the owned arrays ([`PanelArrays`]) and [`write_panel`], which checks them
//! against `meta.json` and writes the directory atomically.

use std::fs;
use std::path::Path;

use super::files::{full_shape, panel_err, FileSpec, PanelFiles};
use super::meta::PanelMeta;
use super::view::PanelView;
use crate::data::npy::{write_npy, NpyDtype};
use crate::error::{Error, Result};

/// Owned arrays of a panel, for writers. Shapes as in the table of `data::panel`'s module doc.
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
