//! `alphanet bench`: training and inference throughput (docs/performance.md) on synthetic batches of the
//! model's real shape, so that the figures are comparable with the peers' (`scripts/`).
//!
//! A training step is what the trainer runs per batch: forward on the tape, the configured loss,
//! backward, the L2 term and Adam. Inference is `Model::predict` (moving BN statistics). Each
//! figure is the median over `steps` timed steps after `warmup` untimed ones, so one-off costs
//! (page faults of fresh buffers, rayon's pool start) and stragglers do not count.
//!
//! `--device cuda:K` runs the same steps, through the same model code, on the GPU; the clock is
//! read once the step's loss has come back (which waits for the step).
//!
//! Files: the command and its arguments (`command.rs`), the measurements (`measure.rs`), the
//! end-to-end timing of the training loop (`end_to_end.rs`), and the rows and table they make
//! (`report.rs`).

mod command;
mod end_to_end;
mod measure;
mod report;

pub use command::{parse_batches, BenchCommand};
pub use measure::{model_configs, run, synthetic_batch, BenchOptions};
pub use report::{render, BenchReport, BenchRow};
