//! CPU reference ops. Each op is a pair of free functions `*_forward` / `*_backward` over flat
//! slices with explicit sizes: the same arguments, in the same order, as its CUDA kernel.
//! Backward functions accumulate (`+=`) into their gradient outputs.

pub mod batchnorm;
pub mod dense;
pub mod elementwise;
pub mod gru;
pub mod loss;
pub mod lstm;
pub mod pooling;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub mod ts_features;
