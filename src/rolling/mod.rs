//! The rolling protocol (docs/protocol.md) as independent jobs: retraining windows from the calendar,
//! (variant, window, seed) jobs with stable ids and shards, atomic job records, the seed
//! ensemble, what a run manifest records and the run's learning curves. `app::run` and
//! `app::merge` drive it.

pub mod claim;
pub mod curves;
pub mod ensemble;
pub mod jobs;
pub mod manifest;
pub mod schedule;
