//! alphanet: training and evaluation engine for AlphaNet (Huatai 2021), CPU reference + CUDA.

pub mod app;
pub mod autograd;
pub mod cuda;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod model;
pub mod ops;
pub mod rolling;
pub mod train;
pub mod util;

pub use error::{Error, Result};
pub use util::float::Float;
