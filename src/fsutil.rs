//! Atomic directory output: everything is written into a hidden sibling temp directory that is
//! renamed into place only when complete, so a crash never leaves a half-written directory that
//! looks valid.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Creates `dir` by running `fill` on a fresh temp sibling, then renaming it. Refuses an existing
/// `dir` (nothing is overwritten) and removes the temp directory if `fill` fails.
pub fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if dir.exists() {
        return Err(Error::Exists {
            path: dir.to_path_buf(),
        });
    }
    let tmp = temp_sibling(dir);
    if let Some(parent) = tmp.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result =
        fill(&tmp).and_then(|()| std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e)));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Writes a file through a temp sibling + rename.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(path);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes a JSON value, pretty-printed, through a temp sibling + rename.
pub fn write_json_atomically(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("a serde_json::Value always serializes");
    write_file_atomically(path, text.as_bytes())
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Removes the temp siblings of `path` that writers killed mid-write left behind (any process).
/// Only for paths that no other live process is writing.
pub fn remove_stale_temps(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(parent, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(parent, e))?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let p = entry.path();
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}
