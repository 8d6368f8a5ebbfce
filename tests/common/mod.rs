//! What the test files share: one tiny synthetic panel per test binary, the binary under test
//! and the check that a command succeeded, the shared real-data folder, the gradient-check
//! verdict, random draws and bit patterns; for the CPU-vs-CUDA binaries, the comparison of GPU
//! and CPU outputs (`gpu`) and the model setups they train (`model_steps`).

// Each test binary compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

pub mod gpu;
pub mod model_steps;

use alphanet::data::synth::{write_synth, SynthConfig};
use alphanet::ops::gradcheck::CheckResult;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
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

/// This build's `alphanet` binary.
pub fn alphanet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_alphanet"))
}

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// A file or folder of the real data in `shared/data` beside the checkout.
pub fn shared(rel: &str) -> PathBuf {
    let p = Path::new(SHARED).join(rel);
    assert!(
        p.exists(),
        "shared data {} is missing (CI has shared/ beside the checkout)",
        p.display()
    );
    p
}

/// Every gradient check passed (and there was at least one); otherwise fails with the table.
pub fn assert_all_pass(rows: &[CheckResult]) {
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.pass),
        "gradient checks failed:\n{}",
        alphanet::app::gradcheck::render(rows)
    );
}

/// `n` draws uniform in `lo..hi`.
pub fn uniform(r: &mut impl rand::Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| r.gen_range(lo..hi)).collect()
}

/// The bit patterns, for bit-for-bit comparisons.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
