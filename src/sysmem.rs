//! Process-wide memory settings made once at start-up.

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
