//! `sysmem::peak_rss_mib` after `reset_peak_rss` sees an allocation. In a test binary of its own:
//! the peak is the whole process's, and the library's unit tests, which run on other threads of
//! one process, allocate and free beside it (a free between the reset and the first reading
//! lowers the baseline the allocation is measured from).

#[test]
#[cfg(target_os = "linux")]
fn peak_rss_follows_an_allocation() {
    use alphanet::util::system::{peak_rss_mib, reset_peak_rss};
    reset_peak_rss();
    let before = peak_rss_mib().expect("Linux reports VmHWM");
    let block = vec![1u8; 64 << 20];
    std::hint::black_box(&block);
    let after = peak_rss_mib().unwrap();
    assert!(after >= before + 60.0, "{before} -> {after} MiB");
}
