//! What a run manifest records about the code and the machine.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeVersion {
    pub version: String,
    /// `git rev-parse HEAD` of the source tree this binary was built from, read at run time;
    /// `None` when that tree or git is not there (e.g. a binary copied to a cluster).
    pub git_commit: Option<String>,
    /// Uncommitted changes to tracked files in that tree.
    pub git_dirty: Option<bool>,
}

impl std::fmt::Display for CodeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "alphanet {}", self.version)?;
        if let Some(c) = &self.git_commit {
            write!(
                f,
                " ({}{})",
                &c[..c.len().min(12)],
                if self.git_dirty == Some(true) {
                    ", dirty"
                } else {
                    ""
                }
            )?;
        }
        Ok(())
    }
}

/// Computed once per process.
pub fn code_version() -> &'static CodeVersion {
    static VERSION: OnceLock<CodeVersion> = OnceLock::new();
    VERSION.get_or_init(|| {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(env!("CARGO_MANIFEST_DIR"))
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        CodeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty()),
        }
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub host: String,
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub threads: usize,
    pub device: String,
    /// `SLURM_*` job variables, when run under Slurm.
    pub slurm: BTreeMap<String, String>,
}

pub fn machine(device: &str) -> Machine {
    const SLURM: [&str; 6] = [
        "SLURM_JOB_ID",
        "SLURM_ARRAY_JOB_ID",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_JOB_NODELIST",
        "SLURM_CPUS_PER_TASK",
        "CUDA_VISIBLE_DEVICES",
    ];
    Machine {
        host: host(),
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: rayon::current_num_threads(),
        device: device.to_string(),
        slurm: SLURM
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect(),
    }
}

pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
