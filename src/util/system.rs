//! What the system tells and is told about this process: memory settings made once at start-up,
//! peak and available memory, and whether another process is alive.

/// Keeps freed memory in the process (glibc only; elsewhere a no-op). Every step allocates and
/// frees the same few large buffers (pictures, features, caches: tens of MB); glibc's default
/// hands such memory back to the kernel on free, from the rayon workers' arenas in particular,
/// and the next step faults it in again, thousands of zeroed pages per step, which cost more
/// than the batch-norm and feature layers together. Called once at start-up by the CLI.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes allocator parameters; called before the buffers exist.
        unsafe {
            // Never trim the heaps; serve blocks below 32 MiB (glibc's maximum) from them
            // rather than from fresh mappings.
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
        }
    }
}

/// Starts a new peak of the process's resident memory (Linux: writing 5 to
/// `/proc/self/clear_refs` resets `VmHWM`); a no-op where that is not possible.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory since start or the last [`reset_peak_rss`], in MiB
/// (`VmHWM` of `/proc/self/status`); `None` where the system does not tell.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Memory the system can give a new allocation without swapping, in bytes (`MemAvailable` of
/// `/proc/meminfo`); `None` where the system does not tell.
pub fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether `pid` is a running (not zombie) process on this host; `None` where `/proc` is not
/// there to tell.
pub fn pid_alive(pid: u32) -> Option<bool> {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return None;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Some(false);
    };
    // `pid (comm) S ...`: the state follows the last ')'.
    let state = stat
        .rfind(')')
        .and_then(|k| stat[k + 1..].trim_start().chars().next());
    Some(!matches!(state, Some('Z') | Some('X') | Some('x')))
}
