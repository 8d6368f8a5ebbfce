//! What each command does, callable from tests: one module per command, owning its
//! arguments (a `clap::Args` struct) and what they turn into; `main.rs` only parses and
//! dispatches. `args` holds the arguments several commands share, `fit` the fitting and date
//! ranges that `train`, `predict`, `demo` and `run` share.

pub mod args;
pub mod bench;
pub mod coverage;
pub mod demo;
pub mod enhance;
pub mod eval;
pub mod gradcheck;
pub mod held_out;
pub mod import;
pub mod merge;
pub mod panel_info;
pub mod predict;
pub mod run;
pub mod synth;
pub mod train;

/// Restores the default SIGPIPE action so `alphanet … | head` ends quietly like other Unix tools
/// instead of panicking on a closed stdout (Rust starts programs with SIGPIPE ignored).
pub fn default_sigpipe() {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        // SAFETY: installs the default disposition for one signal; no handler code runs.
        unsafe {
            signal(SIGPIPE, SIG_DFL);
        }
    }
}
