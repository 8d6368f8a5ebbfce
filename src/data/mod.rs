//! Market data: the on-disk panel, the synthetic market, importers of real data, and samples
//! drawn from a panel.

pub mod builder;
pub mod calendar;
pub mod features;
pub mod fingerprint;
pub mod import_baostock;
pub mod import_qlib;
pub mod index_proxy;
pub mod industry;
pub mod limits;
pub mod npy;
pub mod panel;
pub mod pictures;
pub mod samples;
pub mod styles;
pub mod synth;
