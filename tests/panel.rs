//! The panel directory: round trip, NumPy compatibility, and rejection of corrupt panels.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use alphanet::data::npy::write_npy;
use alphanet::data::panel::{write_panel, Panel, PanelArrays, PanelMeta};
use alphanet::data::synth::{synth_arrays, SynthConfig};
use alphanet::Error;

mod common;
use common::bits;

const SMALL: SynthConfig = SynthConfig {
    stocks: 20,
    days: 80,
    seed: 3,
};
const FILES: [&str; 8] = [
    "features.npy",
    "price.npy",
    "tradable.npy",
    "styles.npy",
    "industry.npy",
    "size.npy",
    "oracle.npy",
    "index.npy",
];

fn small() -> (PanelMeta, PanelArrays) {
    synth_arrays(&SMALL).unwrap()
}

/// A fresh small panel at `<tmp>/panel`.
fn fresh(tmp: &Path) -> PathBuf {
    let (meta, a) = small();
    let dir = tmp.join("panel");
    write_panel(&dir, &meta, &a).unwrap();
    dir
}

fn open_err(dir: &Path) -> String {
    match Panel::open(dir) {
        Ok(_) => panic!("{} opened although it is corrupt", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn round_trip_is_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (meta, a) = small();
    let dir = tmp.path().join("panel");
    write_panel(&dir, &meta, &a).unwrap();
    let p = Panel::open(&dir).unwrap();
    assert_eq!((p.n_dates(), p.n_stocks(), p.n_styles()), (80, 20, 3));
    assert_eq!(p.dir(), dir);
    assert_eq!(bits(p.features()), bits(&a.features));
    assert_eq!(bits(p.price()), bits(&a.price));
    assert_eq!(p.tradable(), &a.tradable[..]);
    assert_eq!(bits(p.styles()), bits(&a.styles));
    assert_eq!(p.industry(), &a.industry[..]);
    assert_eq!(bits(p.size()), bits(&a.size));
    assert_eq!(bits(p.oracle().unwrap()), bits(a.oracle.as_ref().unwrap()));
    // serde_json's default float parsing may differ from the written value in the last ulp.
    let mut m = p.meta().clone();
    let (got, want) = (
        m.oracle.as_ref().unwrap().rank_ic_mean,
        meta.oracle.as_ref().unwrap().rank_ic_mean,
    );
    assert!((got - want).abs() <= 1e-15 * want.abs());
    m.oracle.as_mut().unwrap().rank_ic_mean = want;
    assert_eq!(m, meta);
    assert_eq!(p.price_field("vwap"), Some(4));
    assert_eq!(p.price_field("amount"), None);
    assert_eq!(p.date_index(&meta.dates[17]).unwrap(), 17);
}

#[test]
fn date_index_errors_name_the_panel_range() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Panel::open(&fresh(tmp.path())).unwrap();
    let last = p.meta().dates.last().unwrap().clone();
    let err = p.date_index("2030-01-01").unwrap_err().to_string();
    assert!(
        err.contains("outside the panel") && err.contains("2016-01-04") && err.contains(&last),
        "{err}"
    );
    let err = p.date_index("2016-01-09").unwrap_err().to_string(); // a Saturday
    assert!(
        err.contains("not a trading day")
            && err.contains("2016-01-08")
            && err.contains("2016-01-11"),
        "{err}"
    );
    let err = p.date_index("Jan 5").unwrap_err().to_string();
    assert!(err.contains("not a YYYY-MM-DD date"), "{err}");
}

/// The Python with NumPy that scripts/test.sh chose (`ALPHANET_TEST_PYTHON`), else `python3`.
fn python() -> Command {
    Command::new(std::env::var("ALPHANET_TEST_PYTHON").unwrap_or_else(|_| "python3".into()))
}

#[test]
fn numpy_loads_every_file() {
    let probe = python().args(["-c", "import numpy"]).output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "SKIPPED numpy_loads_every_file: numpy is not importable ({})",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
            );
            return;
        }
        Err(e) => {
            println!("SKIPPED numpy_loads_every_file: no python3 ({e})");
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    let script = r#"
import json, sys, numpy as np
d = sys.argv[1]
want = {"features.npy": ("float32", (80, 20, 15)), "price.npy": ("float32", (80, 20, 6)),
        "tradable.npy": ("uint8", (80, 20)), "styles.npy": ("float32", (80, 20, 3)),
        "industry.npy": ("int16", (80, 20)), "size.npy": ("float32", (80, 20)),
        "oracle.npy": ("float32", (80, 20))}
for f, (dt, shape) in want.items():
    for mode in (None, "r"):
        a = np.load(f"{d}/{f}", mmap_mode=mode)
        assert str(a.dtype) == dt and a.shape == shape, (f, a.dtype, a.shape)
        assert a.flags["C_CONTIGUOUS"]
meta = json.load(open(f"{d}/meta.json"))
p = np.load(f"{d}/price.npy")
assert p[5, 0, 4] == np.float32(sys.argv[2]), (p[5, 0, 4], sys.argv[2])
print("numpy ok", len(meta["dates"]))
"#;
    let (_, a) = small();
    let vwap = format!("{:e}", a.price[5 * 20 * 6 + 4]);
    let out = python()
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .arg(&vwap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "numpy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("numpy ok 80"));
}

#[test]
fn missing_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    fs::remove_file(dir.join("styles.npy")).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("missing styles.npy") && err.contains("[80, 20, 3]"),
        "{err}"
    );
    fs::remove_file(dir.join("meta.json")).unwrap();
    assert!(open_err(&dir).contains("missing meta.json"));
    assert!(open_err(&tmp.path().join("nowhere")).contains("no such directory"));
}

#[test]
fn wrong_dtype_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    write_npy(&dir.join("tradable.npy"), &[80, 20], &vec![1.0f32; 1600]).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("tradable.npy") && err.contains("expected '|u1', found '<f4'"),
        "{err}"
    );
}

#[test]
fn wrong_shape_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    write_npy(&dir.join("size.npy"), &[80, 21], &vec![1.0f32; 80 * 21]).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("size.npy")
            && err.contains("expected [80, 20]")
            && err.contains("found [80, 21]"),
        "{err}"
    );
}

#[test]
fn truncated_file_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    let path = dir.join("features.npy");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("features.npy") && err.contains("truncated") && err.contains("found 95900"),
        "{err}"
    );
}

#[test]
fn bad_magic_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    let path = dir.join("price.npy");
    let mut bytes = fs::read(&path).unwrap();
    bytes[1] = b'X';
    fs::write(&path, &bytes).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("price.npy") && err.contains("bad magic"),
        "{err}"
    );
    fs::write(&path, b"abc").unwrap();
    assert!(open_err(&dir).contains("too short"));
}

/// Rewrites meta.json through `edit`.
fn edit_meta(dir: &Path, edit: impl FnOnce(&mut PanelMeta)) {
    let path = dir.join("meta.json");
    let mut meta: PanelMeta = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut meta);
    fs::write(&path, serde_json::to_string(&meta).unwrap()).unwrap();
}

#[test]
fn meta_that_disagrees_with_the_arrays_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    edit_meta(&dir, |m| {
        m.dates.pop();
    });
    let err = open_err(&dir);
    assert!(
        err.contains("expected [79, 20, 15]")
            && err.contains("79 dates")
            && err.contains("found [80, 20, 15]"),
        "{err}"
    );

    let dir2 = tmp.path().join("p2");
    let (meta, a) = small();
    write_panel(&dir2, &meta, &a).unwrap();
    edit_meta(&dir2, |m| m.dates.swap(3, 4));
    assert!(open_err(&dir2).contains("strictly increasing"));
    edit_meta(&dir2, |m| {
        m.dates.swap(3, 4);
        m.dates[7] = "2016-02-30".into();
    });
    assert!(open_err(&dir2).contains("not a valid YYYY-MM-DD"));
    edit_meta(&dir2, |m| {
        m.dates[7] = meta.dates[7].clone();
        m.codes[5] = m.codes[4].clone();
    });
    assert!(open_err(&dir2).contains("more than once"));
    edit_meta(&dir2, |m| {
        m.codes[5] = meta.codes[5].clone();
        m.industry_names.truncate(3);
    });
    assert!(open_err(&dir2).contains("industry index"));
    edit_meta(&dir2, |m| m.industry_names = meta.industry_names.clone());
    Panel::open(&dir2).unwrap();
}

#[test]
fn existing_output_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let (meta, a) = small();
    let dir = tmp.path().join("panel");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("keep.txt"), "mine").unwrap();
    match write_panel(&dir, &meta, &a) {
        Err(Error::Exists { path }) => assert_eq!(path, dir),
        other => panic!("expected Exists, got {other:?}"),
    }
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    assert_eq!(fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine");
}

#[test]
fn atomic_write_leaves_no_temp_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path());
    let listing = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(listing(tmp.path()), ["panel"]);
    let mut want: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    want.push("meta.json".into());
    want.sort();
    assert_eq!(listing(&dir), want);

    // A failed write (an array of the wrong length) leaves neither the panel nor the temp dir.
    let (meta, mut a) = small();
    a.size.pop();
    let err = write_panel(&tmp.path().join("bad"), &meta, &a)
        .unwrap_err()
        .to_string();
    assert!(err.contains("size.npy"), "{err}");
    assert_eq!(listing(tmp.path()), ["panel"]);
}
