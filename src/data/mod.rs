//! Market data: the on-disk panel, the synthetic market, and samples drawn from a panel.

pub mod npy;
pub mod panel;
pub mod samples;
pub mod synth;
