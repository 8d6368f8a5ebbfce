//! `alphanet merge RUN`: finishes a sharded run (`rolling::merge`).

use crate::rolling::merge::merge;
use crate::Result;
use std::path::PathBuf;

/// The arguments of `alphanet merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeCommand {
    /// The run folder.
    pub run: PathBuf,
    /// The panel, if it moved since the run.
    #[arg(long)]
    pub panel: Option<PathBuf>,
}

impl MergeCommand {
    pub fn run(self) -> Result<()> {
        merge(&self.run, self.panel.as_deref())
    }
}
