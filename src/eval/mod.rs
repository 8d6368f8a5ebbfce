//! Evaluation of a factor against realised returns.

pub mod ic;
