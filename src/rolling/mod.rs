//! The rolling protocol (docs/protocol.md) as independent jobs: retraining windows from the calendar,
//! (variant, window, seed) jobs with stable ids and shards, atomic job records, the seed
//! ensemble, the run record (`run.json`), the driver that runs a shard's jobs, the merge of the seed
//! ensembles, what a run manifest records and the run's learning curves. `app::run` and
//! `app::merge` parse the flags and call it.

pub mod claim;
pub mod curves;
pub mod driver;
pub mod ensemble;
pub mod jobs;
pub mod manifest;
pub mod merge;
pub mod record;
pub mod schedule;
