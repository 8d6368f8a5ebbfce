//! alphanet: training and evaluation engine for AlphaNet (Huatai 2021), CPU reference + CUDA.

pub mod app;
pub mod autograd;
pub mod coverage;
pub mod cuda;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod float;
pub mod fsutil;
pub mod gradcheck;
pub mod kernel_consts;
pub mod model;
pub mod ops;
pub mod rng;
pub mod rolling;
pub mod sysmem;
pub mod train;

pub use error::{Error, Result};
pub use float::Float;
