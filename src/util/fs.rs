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

/// Checks, before any work is done, that the output directory `dir` can be created the way
/// [`write_dir_atomically`] will: it must not exist, and its nearest existing ancestor must be a
/// directory that accepts a new entry (probed by creating and removing a hidden directory there).
/// Nothing is left behind.
pub fn check_output_creatable(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Err(Error::Exists {
            path: dir.to_path_buf(),
        });
    }
    let mut ancestor = dir.parent();
    let base = loop {
        match ancestor {
            Some(a) if a.as_os_str().is_empty() => break Path::new("."),
            Some(a) if a.exists() => break a,
            Some(a) => ancestor = a.parent(),
            None => break Path::new("."),
        }
    };
    if !base.is_dir() {
        return Err(Error::Unwritable {
            path: dir.to_path_buf(),
            msg: format!(
                "{} is not a directory; choose an --out inside a writable directory",
                base.display()
            ),
        });
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let probe = base.join(format!(".alphanet-probe-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| Error::Unwritable {
        path: dir.to_path_buf(),
        msg: format!(
            "{} does not accept new files ({e}); choose an --out in a writable directory",
            base.display()
        ),
    })?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
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

/// Removes the temp siblings of `path` that writers killed mid-write left behind. A temp whose
/// writer (the pid in its name) still runs on this host is left alone.
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
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&prefix) {
            let live = pid.parse::<u32>().ok().is_some_and(|pid| {
                pid != std::process::id() && crate::util::system::pid_alive(pid) == Some(true)
            });
            if live {
                continue;
            }
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
