//! Training: batches of whole dates, the purged split, the optimisation step, the loop,
//! checkpoints and prediction.

pub mod batches;
pub mod checkpoint;
pub mod fit;
pub mod predict;
pub mod progress;
pub mod split;
pub mod step;
pub mod trainer;
