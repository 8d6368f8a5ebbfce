//! Training loop, batching, checkpoints.
