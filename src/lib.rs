//! alphanet: training and evaluation engine for AlphaNet (Huatai 2021), CPU reference + CUDA.

pub mod autograd;
pub mod cuda;
pub mod data;
pub mod error;
pub mod float;
pub mod gradcheck;
pub mod model;
pub mod ops;
pub mod rng;
pub mod train;

pub use error::{Error, Result};
pub use float::Float;
