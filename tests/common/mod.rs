//! What the command-line test files share: one tiny synthetic panel per test binary, and the
//! check that a command succeeded.

use alphanet::data::synth::{write_synth, SynthConfig};
use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

/// 40 stocks × 360 business days from 2016-01-04.
pub const SMALL: SynthConfig = SynthConfig {
    stocks: 40,
    days: 360,
    seed: 1,
};

pub struct Fixture {
    _tmp: tempfile::TempDir,
    /// A scratch folder for the test's outputs.
    pub root: PathBuf,
    /// The SMALL panel, written once.
    pub panel: PathBuf,
}

/// The SMALL panel, written on first use and shared by every test of the binary.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let panel = root.join("panel");
        write_synth(&SMALL, &panel).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            panel,
        }
    })
}

/// The command succeeded; otherwise fails with its status, stdout and stderr.
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}
