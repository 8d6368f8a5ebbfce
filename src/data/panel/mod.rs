//! The panel: a directory of `.npy` arrays plus `meta.json`, memory-mapped without parsing (docs/data.md).
//! This module is the file format only: dates are in [`super::calendar`], the features in
//! [`super::features`], price limits in [`super::limits`], styles in [`super::styles`].
//!
//! | file | dtype, shape |
//! |---|---|
//! | `meta.json` | [`PanelMeta`] |
//! | `features.npy` | f32 `[T, N, 15]`, the features of docs/features.md in [`FEATURE_NAMES`](super::features::FEATURE_NAMES) order |
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
//!
//! Files: `meta.json` and the format's constants (`meta.rs`), the array files expected of a
//! `meta.json` (`files.rs`), writing a panel (`write.rs`), opening and reading one
//! (`mapped.rs`), and the borrowed view the sample builders work on (`view.rs`).

mod files;
mod mapped;
mod meta;
mod view;
mod write;

pub use mapped::Panel;
pub use meta::{flags, BenchmarkMeta, OracleMeta, PanelMeta, FORMAT_VERSION, PRICE_FIELDS};
pub use view::PanelView;
pub use write::{write_panel, PanelArrays};
