//! The array files a `meta.json` implies (name, dtype, shape), which writing and opening a
//! panel both check against, and the error both report a bad panel with.

use std::path::Path;

use super::meta::PanelMeta;
use crate::data::features::FEATURE_NAMES;
use crate::data::npy::NpyDtype;
use crate::error::Error;

/// An array file with its dtype and the trailing dims expected after `[T, N]`.
pub(super) struct FileSpec {
    pub(super) name: &'static str,
    pub(super) descr: &'static str,
    pub(super) inner: Vec<usize>,
}

/// The array files of the table of `data::panel`'s module doc, by name; the optional ones exist
/// exactly when `meta.json` says so.
pub(super) struct PanelFiles {
    pub(super) features: FileSpec,
    pub(super) price: FileSpec,
    pub(super) tradable: FileSpec,
    pub(super) styles: FileSpec,
    pub(super) industry: FileSpec,
    pub(super) size: FileSpec,
    pub(super) oracle: Option<FileSpec>,
    pub(super) index: Option<FileSpec>,
}

impl PanelFiles {
    pub(super) fn of(meta: &PanelMeta) -> PanelFiles {
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

pub(super) fn full_shape(meta: &PanelMeta, inner: &[usize]) -> Vec<usize> {
    let mut s = vec![meta.n_dates(), meta.n_stocks()];
    s.extend_from_slice(inner);
    s
}

pub(super) fn panel_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Panel {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}
