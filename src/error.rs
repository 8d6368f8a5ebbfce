//! The crate's one error type. Every message names the thing that is wrong and how to fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A `.npy` file that is not what the panel format expects.
    #[error("{path}: {msg}")]
    Npy { path: PathBuf, msg: String },
    /// A panel directory that is missing files or whose files disagree with `meta.json`.
    #[error("panel {path}: {msg}")]
    Panel { path: PathBuf, msg: String },
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    /// A bad flag or flag combination; the message says which flag and what is accepted.
    #[error("{0}")]
    Config(String),
    /// Data that leaves nothing to work on (no samples after filtering, dates out of range, ...).
    #[error("{0}")]
    Data(String),
    #[error("output {path} already exists: choose another path or delete it first")]
    Exists { path: PathBuf },
    /// A panel that is not the one a run was planned on (`run` resuming, `merge`).
    #[error("panel {panel} is not the panel {run} was run on: {diffs}; {fix}")]
    PanelMismatch {
        panel: PathBuf,
        run: PathBuf,
        /// What differs, one phrase each.
        diffs: String,
        fix: String,
    },
    /// An output that cannot be created where asked; checked before any work is done.
    #[error("cannot create output {path}: {msg}")]
    Unwritable { path: PathBuf, msg: String },
    #[error("CUDA: {0}")]
    Cuda(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A CUDA driver, NVRTC or stand-in failure, in its own words.
    pub fn cuda(e: impl std::fmt::Display) -> Self {
        Error::Cuda(e.to_string())
    }
}
