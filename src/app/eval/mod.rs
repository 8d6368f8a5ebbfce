//! `alphanet eval`: neutralized RankIC and the 5-group layered backtest of one or more factors
//! on a panel, written as `report.md` (one row per factor, the report's layout),
//! `metrics.json` and PNG charts in a new output folder. With `--baselines` the classic
//! one-line factors (`eval::baselines`) are scored beside them, restricted to the dates and
//! stocks of the first factor.
//!
//! Files: the command and its run (`command.rs`), what the arguments turn into and where each
//! evaluated factor came from (`options.rs`), how factors are neutralized on a panel with or
//! without industries (`neutralization.rs`), the output folder's charts and `metrics.json`
//! (`outputs.rs`), and the text of `report.md` (`report.rs`).

mod command;
mod neutralization;
mod options;
mod outputs;
mod report;

pub use command::{run, EvalCommand};
pub use neutralization::{
    neutralization_industries, neutralization_view, BY_INDUSTRY_AND_SIZE, BY_SIZE_ONLY,
};
pub use options::{EvalOptions, Source};
pub use outputs::slug;
pub use report::main_table;
pub(crate) use report::{num, pct};
