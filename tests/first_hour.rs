//! What a new user sees in the first hour (issue 27): model names as users write them, never
//! Rust debug text; both RankIC figures of the demo, each said for what it is; readable output
//! folder names; progress lines when the output is not a terminal.

use alphanet::app::demo::utc_stamp;
use alphanet::model::config::display_name;
use alphanet::model::{apply_variant, LossConfig, ModelConfig};

mod common;
use common::{alphanet, ok};

/// Debug text of the engine's types that must never reach a user: `Some(…)`, `None`, and the
/// enum name `V2` where the model is meant.
fn assert_no_debug_text(what: &str, text: &str) {
    for bad in ["Some(", "None", "V1", "V2", "V3", "Arch::"] {
        assert!(!text.contains(bad), "{what} shows {bad:?}:\n{text}");
    }
}

#[test]
fn models_are_named_as_users_write_them() {
    let name = |variants: &[&str]| {
        let (mut m, mut l) = (ModelConfig::default(), LossConfig::default());
        for v in variants {
            apply_variant(v, &mut m, &mut l).unwrap();
        }
        display_name(&m, &l)
    };
    assert_eq!(name(&["v2"]), "v2");
    assert_eq!(name(&["v2.1", "v2.3"]), "v2+v2.1+v2.3");
    assert_eq!(name(&["v3", "v2.2"]), "v3+v2.2");
    let (mut m, mut l) = (ModelConfig::default(), LossConfig::default());
    m.pair_sample = Some(6);
    l.long_weight = Some(3.0);
    assert_eq!(display_name(&m, &l), "v2+v2.1(pairs 6)+v2.3(weight 3)");
}

#[test]
fn run_folders_are_named_by_date() {
    assert_eq!(utc_stamp(0), "1970-01-01-000000");
    assert_eq!(utc_stamp(1_796_678_351), "2026-12-07-211911");
    assert_eq!(utc_stamp(951_782_400), "2000-02-29-000000");
}

#[test]
fn the_demo_speaks_in_names_and_says_which_rankic_is_which() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let o = ok(alphanet()
        .args(["demo", "--stocks", "60", "--days", "220", "--epochs", "2"])
        .args([
            "--variant",
            "v2.1,v2.3",
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let console =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_no_debug_text("the demo's console", &console);
    assert!(console.contains("training v2+v2.1+v2.3 on"), "{console}");
    assert!(console.contains("held-out RankIC mean "), "{console}");
    assert!(
        console.contains("as `alphanet eval` scores it (industry + size neutralized, every 10th date): RankIC mean "),
        "{console}"
    );
    // One progress line per epoch when stderr is not a terminal (here: a pipe).
    let epochs = console.lines().filter(|l| l.starts_with("epoch ")).count();
    assert_eq!(epochs, 2, "{console}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_no_debug_text("report.md", &report);
    assert!(report.contains("Model v2+v2.1+v2.3."), "{report}");
    let metrics = std::fs::read_to_string(out.join("metrics.json")).unwrap();
    assert_no_debug_text("metrics.json", &metrics);
    assert!(metrics.contains("neutralized_rank_ic_every_10_days"));

    let o = ok(alphanet()
        .args(["eval", "--baselines", "reversal5", "--panel"])
        .arg(out.join("panel"))
        .arg("--factor")
        .arg(format!("v2={}", out.join("factor.csv").display()))
        .arg("--out")
        .arg(tmp.path().join("report"))
        .output()
        .unwrap());
    let console =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_no_debug_text("eval's console", &console);
    for f in ["report.md", "metrics.json"] {
        let text = std::fs::read_to_string(tmp.path().join("report").join(f)).unwrap();
        assert_no_debug_text(f, &text);
    }
}
