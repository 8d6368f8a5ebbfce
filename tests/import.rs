//! The qlib and baostock importers on ~20-stock slices of the shared data (read in place), with
//! cells checked against numbers computed by hand from the source files, and corrupt copies of a
//! few files in a tempdir.
//!
//! qlib cells cite `features/<CODE>/<field>.day.bin` element e (element 0 is the start index;
//! with start 0, element e is calendar line e of `calendars/day.txt`). baostock cells cite
//! `baostock-csi300/<file>.csv` line numbers (line 1 is the header).

use std::fs;
use std::path::{Path, PathBuf};

use alphanet::app::panel_info::panel_info;
use alphanet::data::import_baostock::{import_baostock, BaostockOptions};
use alphanet::data::import_qlib::{import_qlib, QlibOptions};
use alphanet::data::panel::{flags, Panel};
use alphanet::data::samples::raw_labels;
use alphanet::Error;
use indicatif::ProgressBar;
use tempfile::TempDir;

mod common;
use common::shared;

const QLIB_CODES: [&str; 20] = [
    "SH600000", "SH600004", "SH600009", "SH600030", "SH600036", "SH600276", "SH600519", "SH601012",
    "SH601166", "SH601318", "SH601398", "SH688981", "SZ000001", "SZ000333", "SZ000651", "SZ000858",
    "SZ002415", "SZ300015", "SZ300059", "SZ300750",
];

const BAOSTOCK_FILES: [&str; 20] = [
    "sh.600000",
    "sh.600009",
    "sh.600030",
    "sh.600036",
    "sh.600276",
    "sh.600515",
    "sh.600519",
    "sh.601012",
    "sh.601166",
    "sh.601318",
    "sh.601398",
    "sh.688981",
    "sz.000001",
    "sz.000333",
    "sz.000408",
    "sz.000651",
    "sz.000792",
    "sz.000858",
    "sz.002415",
    "sz.300750",
];

/// The lines of `file` whose first field is one of `codes`.
fn lines_for(file: &Path, codes: &[&str]) -> String {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| codes.contains(&l.split('\t').next().unwrap_or("")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A qlib root for the 20 codes: calendars/ and features/ link to the shared data, the
/// instrument files are the shared ones cut to those codes.
fn qlib_slice(tmp: &Path) -> PathBuf {
    let root = tmp.join("qlib");
    fs::create_dir_all(root.join("instruments")).unwrap();
    for d in ["calendars", "features"] {
        std::os::unix::fs::symlink(shared(&format!("ashare-qlib/{d}")), root.join(d)).unwrap();
    }
    for f in ["csi300.txt", "all.txt"] {
        let text = lines_for(
            &shared(&format!("ashare-qlib/instruments/{f}")),
            &QLIB_CODES,
        );
        fs::write(root.join("instruments").join(f), text).unwrap();
    }
    root
}

fn import_qlib_slice(tmp: &Path) -> Panel {
    let out = tmp.join("panel");
    let s = import_qlib(
        &QlibOptions {
            src: qlib_slice(tmp),
            out: out.clone(),
            instruments: "csi300".into(),
            start: None,
            end: None,
            industry: Some(shared("industry/stock_industry_csrc.csv")),
            benchmark: None,
        },
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!((s.n_dates, s.n_stocks), (3966, 20));
    Panel::open(&out).unwrap()
}

fn import_baostock_slice(tmp: &Path) -> Panel {
    let src = tmp.join("bs");
    fs::create_dir_all(&src).unwrap();
    for f in BAOSTOCK_FILES {
        let name = format!("{f}.csv");
        std::os::unix::fs::symlink(shared(&format!("baostock-csi300/{name}")), src.join(name))
            .unwrap();
    }
    let out = tmp.join("panel-bs");
    let s = import_baostock(
        &BaostockOptions {
            src,
            out: out.clone(),
            industry: Some(shared("industry/stock_industry_csrc.csv")),
            start: None,
            end: None,
        },
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!((s.n_dates, s.n_stocks, s.missing_rows), (1273, 20, 0));
    Panel::open(&out).unwrap()
}

/// (date index, stock index) of a cell.
fn at(p: &Panel, date: &str, code: &str) -> (usize, usize) {
    let t = p.date_index(date).unwrap();
    let i = p.meta().codes.iter().position(|c| c == code).unwrap();
    (t, i)
}

fn features(p: &Panel, date: &str, code: &str) -> Vec<f64> {
    let (t, i) = at(p, date, code);
    let c = t * p.n_stocks() + i;
    p.features()[c * 15..(c + 1) * 15]
        .iter()
        .map(|&x| x as f64)
        .collect()
}

fn price(p: &Panel, date: &str, code: &str, field: &str) -> f64 {
    let (t, i) = at(p, date, code);
    let k = p.price_field(field).unwrap();
    p.price()[(t * p.n_stocks() + i) * p.meta().price_fields.len() + k] as f64
}

fn flags_of(p: &Panel, date: &str, code: &str) -> u8 {
    let (t, i) = at(p, date, code);
    p.tradable()[t * p.n_stocks() + i]
}

/// f32 storage: relative error of a value rounded to f32.
fn close_to(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
        "{what}: got {got}, expected {want}"
    );
}

#[test]
fn qlib_features_match_the_bin_files() {
    let tmp = TempDir::new().unwrap();
    let p = import_qlib_slice(tmp.path());
    // SZ000001 on 2024-10-08 (calendar line 3583), features/SZ000001/*.day.bin element 3583;
    // element 3582 is the previous day.
    let (open, high, low, close) = (
        1509.1041259765625,
        1509.1041259765625,
        1386.622802734375,
        1447.3016357421875,
    );
    let (prev_close, volume, factor) = (1372.014892578125, 588897792.0, 112.36813354492188);
    let vwap = (high + low + close) / 3.0;
    // turn proxy: volume / mean volume of elements 3334..=3583 (250 traded days), computed
    // with numpy from volume.day.bin = 4.802851711759621.
    let turn = 4.802851711759621;
    let f = features(&p, "2024-10-08", "SZ000001");
    let want = [
        close / prev_close - 1.0,
        open,
        close,
        high,
        low,
        volume,
        vwap,
        turn,
        turn,
        close / turn,
        open / turn,
        volume / low,
        vwap / high,
        low / high,
        vwap / close,
    ];
    for (k, (g, w)) in f.iter().zip(want).enumerate() {
        close_to(*g, w, &format!("feature {k}"));
    }
    close_to(
        price(&p, "2024-10-08", "SZ000001", "raw_close"),
        close / factor,
        "raw close",
    );
    // size proxy: ln(mean raw close x volume over the same 250 days) = 20.966544690827728.
    let (t, i) = at(&p, "2024-10-08", "SZ000001");
    close_to(
        p.size()[t * p.n_stocks() + i] as f64,
        20.966544690827728,
        "size",
    );
    // Industry from stock_industry_csrc.csv (row `sz.000001,平安银行,J66货币金融服务`).
    let ind = p.industry()[t * p.n_stocks() + i];
    assert_eq!(p.meta().industry_names[ind as usize], "J66货币金融服务");
}

#[test]
fn qlib_flags_follow_board_rules_and_csi300_membership() {
    let tmp = TempDir::new().unwrap();
    let p = import_qlib_slice(tmp.path());
    use flags::*;
    // SZ000001 2024-10-08: raw open 1509.1041/112.36813 = 13.43, reference 1372.0149/112.36813
    // = 12.21, main-board limit round(12.21 x 1.1) = 13.43.
    assert_eq!(
        flags_of(&p, "2024-10-08", "SZ000001"),
        LISTED | LIMIT_UP_OPEN
    );
    // SZ300059 2015-04-16 (calendar line 1231): ChiNext before 2020-08-24 is ±10%, and it joined
    // CSI300 only on 2015-06-15 (instruments/csi300.txt line 898).
    assert_eq!(
        flags_of(&p, "2015-04-16", "SZ300059"),
        LISTED | LIMIT_UP_OPEN | OUTSIDE_UNIVERSE
    );
    // SZ300059 2023-08-28 (line 3318): reference 15.79, open 18.40 is over +10% (17.37) but
    // under ChiNext's +20% (18.95).
    assert_eq!(flags_of(&p, "2023-08-28", "SZ300059"), LISTED);
    // SH688981 (STAR, ±20%) 2024-10-08 opened at its limit; a CSI300 member since 2022-06-13.
    assert_eq!(
        flags_of(&p, "2024-10-08", "SH688981"),
        LISTED | LIMIT_UP_OPEN
    );
    // SH688981's data starts at calendar index 2559 (close.day.bin element 0): not listed before.
    assert_eq!(flags_of(&p, "2020-07-15", "SH688981"), 0);
    assert_eq!(flags_of(&p, "2020-07-16", "SH688981") & LISTED, LISTED);
    // SH600000 2010-02-26 (element 35): volume 0, flat price 61.59213638305664.
    assert_eq!(flags_of(&p, "2010-02-26", "SH600000"), LISTED | SUSPENDED);
    assert!(features(&p, "2010-02-26", "SH600000")
        .iter()
        .all(|x| x.is_nan()));
    close_to(
        price(&p, "2010-02-26", "SH600000", "close"),
        61.59213638305664,
        "suspended close",
    );
    // SH600004: CSI300 2010-01-04..2011-12-12 and 2018-12-17..2021-06-14 (csi300.txt lines 2-3).
    assert_eq!(
        flags_of(&p, "2015-06-01", "SH600004"),
        LISTED | OUTSIDE_UNIVERSE
    );
    assert_eq!(flags_of(&p, "2019-06-03", "SH600004"), LISTED);
    assert_eq!(
        flags_of(&p, "2021-06-15", "SH600004"),
        LISTED | OUTSIDE_UNIVERSE
    );
}

#[test]
fn qlib_label_is_the_vwap_return_and_raw_prices_match_baostock() {
    let tmp = TempDir::new().unwrap();
    let p = import_qlib_slice(tmp.path());
    // SH600000, t = 2020-01-02: t+1 = 2020-01-03 (element 2433), t+11 = 2020-01-17 (element
    // 2443); vwap proxy (H+L+C)/3 of high/low/close.day.bin.
    let v1 = (123.51715850830078 + 121.95240783691406 + 123.22377014160156) / 3.0;
    let v11 = (120.19207000732422 + 118.92071533203125 + 119.60529327392578) / 3.0;
    let labels = raw_labels(p.view());
    let (t, i) = at(&p, "2020-01-02", "SH600000");
    let got = labels[t * p.n_stocks() + i] as f64;
    assert!((got - (v11 / v1 - 1.0)).abs() < 1e-6, "label {got}");
    // qlib's close / factor is the raw close: 12.47 on 2020-01-02, baostock sh.600000.csv line 2.
    assert!((price(&p, "2020-01-02", "SH600000", "raw_close") - 12.47).abs() < 1e-5);
}

#[test]
fn qlib_styles_are_standardized_and_recorded() {
    let tmp = TempDir::new().unwrap();
    let p = import_qlib_slice(tmp.path());
    let m = p.meta();
    assert_eq!(
        m.style_names,
        [
            "size",
            "beta",
            "momentum",
            "residual_volatility",
            "nonlinear_size",
            "liquidity"
        ]
    );
    assert_eq!(
        m.missing_styles,
        ["book_to_price", "earnings_yield", "growth", "leverage"]
    );
    assert!(m
        .proxies
        .iter()
        .any(|x| x.starts_with("vwap = (high + low + close) / 3")));
    assert_eq!(m.provenance["market"], "index SH000300");
    assert_standardized(&p, "2019-06-03", 18);
    let info = panel_info(p.dir()).unwrap();
    assert_eq!((info.n_stocks, info.n_dates), (20, 3966));
    assert!(info.samples_per_date.2 <= 20 && info.samples_per_date.1 > 5);
    assert!(info.render().contains("residual_volatility"));
}

/// Every style of `date` has mean 0 and population std 1 over its finite values, and at least
/// `min_finite` of them.
fn assert_standardized(p: &Panel, date: &str, min_finite: usize) {
    let t = p.date_index(date).unwrap();
    let (n, k) = (p.n_stocks(), p.n_styles());
    for s in 0..k {
        let v: Vec<f64> = (0..n)
            .map(|i| p.styles()[(t * n + i) * k + s] as f64)
            .filter(|x| x.is_finite())
            .collect();
        let name = &p.meta().style_names[s];
        assert!(v.len() >= min_finite, "{name}: {} values", v.len());
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(
            mean.abs() < 1e-5 && (sd - 1.0).abs() < 1e-5,
            "{name}: mean {mean} sd {sd}"
        );
    }
}

#[test]
fn baostock_cells_match_the_csv_rows() {
    let tmp = TempDir::new().unwrap();
    let p = import_baostock_slice(tmp.path());
    use flags::*;
    // sh.600000.csv line 135 (2020-07-23), the first ex-rights day: preclose 11.02 against the
    // previous close 11.62 (line 134), so factor = 11.62 / 11.02. open 10.99, high 10.99,
    // low 10.61, close 10.84, volume 86806896, amount 937319747.44, turn 0.3089.
    let factor = 11.62 / 11.02;
    let (o, h, l, c) = (
        10.99 * factor,
        10.99 * factor,
        10.61 * factor,
        10.84 * factor,
    );
    let (volume, turn) = (86806896.0, 0.3089);
    let vwap = 937319747.44 / volume * factor;
    let want = [
        10.84 / 11.02 - 1.0,
        o,
        c,
        h,
        l,
        volume,
        vwap,
        turn,
        turn,
        c / turn,
        o / turn,
        volume / l,
        vwap / h,
        l / h,
        vwap / c,
    ];
    let f = features(&p, "2020-07-23", "SH600000");
    for (k, (g, w)) in f.iter().zip(want).enumerate() {
        close_to(*g, w, &format!("feature {k}"));
    }
    close_to(
        price(&p, "2020-07-23", "SH600000", "raw_close"),
        10.84,
        "raw close",
    );
    // size = ln(float cap) = ln(86806896 / (0.3089 / 100) x 10.84).
    let (t, i) = at(&p, "2020-07-23", "SH600000");
    close_to(
        p.size()[t * p.n_stocks() + i] as f64,
        (volume / (turn / 100.0) * 10.84f64).ln(),
        "size",
    );
    // Label at 2020-01-02: amount / volume of line 3 (2020-01-03) and line 13 (2020-01-17).
    let v1 = 477053357.0 / 38018810.0;
    let v11 = 215028083.0 / 17593111.0;
    let labels = raw_labels(p.view());
    let (t, i) = at(&p, "2020-01-02", "SH600000");
    assert!((labels[t * p.n_stocks() + i] as f64 - (v11 / v1 - 1.0)).abs() < 1e-6);

    // sh.600009.csv line 349 (2021-06-10): tradestatus 0, close 48.85; one ex-rights day
    // before it (line 155: close 78.52 then preclose 77.73).
    assert_eq!(flags_of(&p, "2021-06-10", "SH600009"), LISTED | SUSPENDED);
    assert!(features(&p, "2021-06-10", "SH600009")
        .iter()
        .all(|x| x.is_nan()));
    close_to(
        price(&p, "2021-06-10", "SH600009", "close"),
        48.85 * 78.52 / 77.73,
        "suspended adjusted close",
    );
    // sh.600515.csv (isST 1): line 274 (2021-02-19) opens 6.79 = round(7.15 x 0.95), line 277
    // (2021-02-24) opens 7.12 = round(6.78 x 1.05): the ±5% ST limit.
    assert_eq!(
        flags_of(&p, "2021-02-19", "SH600515"),
        LISTED | ST | LIMIT_DOWN_OPEN
    );
    assert_eq!(
        flags_of(&p, "2021-02-24", "SH600515"),
        LISTED | ST | LIMIT_UP_OPEN
    );
    // sz.000001.csv line 1153 (2024-10-08): preclose 12.21, open 13.43 (+10%).
    assert_eq!(
        flags_of(&p, "2024-10-08", "SZ000001"),
        LISTED | LIMIT_UP_OPEN
    );
    // sh.688981.csv line 1025 (2024-10-08): preclose 59.99, open 71.99 = round(59.99 x 1.2).
    assert_eq!(
        flags_of(&p, "2024-10-08", "SH688981"),
        LISTED | LIMIT_UP_OPEN
    );

    let m = p.meta();
    assert_eq!(m.style_names.len(), 8);
    assert_eq!(&m.style_names[6..], ["book_to_price", "earnings_yield"]);
    assert_eq!(m.missing_styles, ["growth", "leverage"]);
    assert_standardized(&p, "2023-06-01", 18);
}

// ---- corrupt inputs -------------------------------------------------------------------------

fn err_text(e: Error) -> String {
    e.to_string()
}

/// A qlib root with real copies of SH600000's bins, the calendar and a one-line instruments file.
fn qlib_copy(tmp: &Path) -> PathBuf {
    let root = tmp.join("q");
    let feat = root.join("features").join("SH600000");
    fs::create_dir_all(&feat).unwrap();
    fs::create_dir_all(root.join("calendars")).unwrap();
    fs::create_dir_all(root.join("instruments")).unwrap();
    fs::copy(
        shared("ashare-qlib/calendars/day.txt"),
        root.join("calendars/day.txt"),
    )
    .unwrap();
    fs::write(
        root.join("instruments/all.txt"),
        "SH600000\t2010-01-04\t2026-05-08\n",
    )
    .unwrap();
    for f in ["open", "high", "low", "close", "volume", "factor"] {
        let name = format!("{f}.day.bin");
        fs::copy(
            shared(&format!("ashare-qlib/features/SH600000/{name}")),
            feat.join(name),
        )
        .unwrap();
    }
    root
}

fn try_qlib(src: &Path, out: &Path) -> Result<(), String> {
    import_qlib(
        &QlibOptions {
            src: src.to_path_buf(),
            out: out.to_path_buf(),
            instruments: "all".into(),
            start: None,
            end: None,
            industry: None,
            benchmark: None,
        },
        &ProgressBar::hidden(),
    )
    .map(|_| ())
    .map_err(err_text)
}

fn truncate(path: &Path, drop_bytes: u64) {
    let len = fs::metadata(path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len - drop_bytes)
        .unwrap();
}

#[test]
fn qlib_copy_imports_and_truncated_bins_are_named() {
    let tmp = TempDir::new().unwrap();
    let root = qlib_copy(tmp.path());
    try_qlib(&root, &tmp.path().join("ok")).unwrap();
    // Output exists: refused.
    assert!(try_qlib(&root, &tmp.path().join("ok"))
        .unwrap_err()
        .contains("already exists"));

    let close = root.join("features/SH600000/close.day.bin");
    truncate(&close, 4);
    let e = try_qlib(&root, &tmp.path().join("a")).unwrap_err();
    assert!(
        e.contains("SH600000/close.day.bin")
            && e.contains("3965 values")
            && e.contains("truncated"),
        "{e}"
    );
    truncate(&close, 2);
    let e = try_qlib(&root, &tmp.path().join("b")).unwrap_err();
    assert!(
        e.contains("SH600000/close.day.bin") && e.contains("15862 bytes"),
        "{e}"
    );
    assert!(!tmp.path().join("a").exists() && !tmp.path().join("b").exists());
}

#[test]
fn qlib_code_outside_the_calendar_range_is_named() {
    let tmp = TempDir::new().unwrap();
    let root = qlib_copy(tmp.path());
    // Keep the first 3000 calendar lines: SH600000's 3966 values run past the end.
    let cal = root.join("calendars/day.txt");
    let short: String = fs::read_to_string(&cal)
        .unwrap()
        .lines()
        .take(3000)
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&cal, short).unwrap();
    let e = try_qlib(&root, &tmp.path().join("out")).unwrap_err();
    assert!(
        e.contains("SH600000/open.day.bin")
            && e.contains("0..3966")
            && e.contains("outside the calendar range"),
        "{e}"
    );
    // A garbled calendar line is named by its line number.
    fs::write(&cal, "2010-01-04\n2010-01-05\n2010-13-06\n").unwrap();
    let e = try_qlib(&root, &tmp.path().join("out")).unwrap_err();
    assert!(e.contains("calendars/day.txt:3"), "{e}");
    // A garbled instruments line too.
    fs::write(root.join("instruments/all.txt"), "SH600000\t2010-01-04\n").unwrap();
    fs::copy(shared("ashare-qlib/calendars/day.txt"), &cal).unwrap();
    let e = try_qlib(&root, &tmp.path().join("out")).unwrap_err();
    assert!(
        e.contains("instruments/all.txt:1") && e.contains("2 fields"),
        "{e}"
    );
}

fn try_baostock(src: &Path, out: &Path) -> Result<(), String> {
    import_baostock(
        &BaostockOptions {
            src: src.to_path_buf(),
            out: out.to_path_buf(),
            industry: None,
            start: None,
            end: None,
        },
        &ProgressBar::hidden(),
    )
    .map(|_| ())
    .map_err(err_text)
}

/// `sh.600000.csv` copied into a fresh dir with line `line` (1-based) replaced.
fn csv_with_line(tmp: &Path, dir: &str, line: usize, replace: impl Fn(&str) -> String) -> PathBuf {
    let src = tmp.join(dir);
    fs::create_dir_all(&src).unwrap();
    let text = fs::read_to_string(shared("baostock-csi300/sh.600000.csv")).unwrap();
    let out: String = text
        .lines()
        .enumerate()
        .map(|(k, l)| {
            if k + 1 == line {
                format!("{}\n", replace(l))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(src.join("sh.600000.csv"), out).unwrap();
    src
}

#[test]
fn malformed_csv_rows_are_named_by_file_and_line() {
    let tmp = TempDir::new().unwrap();
    // Line 50 loses its last field.
    let src = csv_with_line(tmp.path(), "a", 50, |l| {
        l.rsplit_once(',').unwrap().0.to_string()
    });
    let e = try_baostock(&src, &tmp.path().join("out")).unwrap_err();
    assert!(
        e.contains("sh.600000.csv:50") && e.contains("18 fields where the header has 19"),
        "{e}"
    );
    // Line 60's close (field 11) is not a number.
    let src = csv_with_line(tmp.path(), "b", 60, |l| {
        let mut f: Vec<&str> = l.split(',').collect();
        f[10] = "12.3x";
        f.join(",")
    });
    let e = try_baostock(&src, &tmp.path().join("out")).unwrap_err();
    assert!(
        e.contains("sh.600000.csv:60") && e.contains("column close") && e.contains("12.3x"),
        "{e}"
    );
    // Line 70's date goes backwards.
    let src = csv_with_line(tmp.path(), "c", 70, |l| l.replace("2020-", "2019-"));
    let e = try_baostock(&src, &tmp.path().join("out")).unwrap_err();
    assert!(
        e.contains("sh.600000.csv:70") && e.contains("date order"),
        "{e}"
    );
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn empty_directories_are_clear_errors() {
    let tmp = TempDir::new().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let e = try_qlib(&empty, &tmp.path().join("o1")).unwrap_err();
    assert!(
        e.contains("calendars/day.txt") && e.contains("not a qlib dump_bin directory"),
        "{e}"
    );
    let e = try_baostock(&empty, &tmp.path().join("o2")).unwrap_err();
    assert!(e.contains("no .csv files"), "{e}");
}

#[test]
fn the_csi500_proxy_is_built_from_the_data_and_refused_where_it_cannot_be() {
    let tmp = tempfile::tempdir().unwrap();
    let src = qlib_slice(tmp.path());
    let opts = |instruments: &str, benchmark: &str, out: &str| QlibOptions {
        src: src.clone(),
        out: tmp.path().join(out),
        instruments: instruments.into(),
        start: Some("2012-01-04".into()),
        end: Some("2013-12-31".into()),
        industry: None,
        benchmark: Some(benchmark.into()),
    };
    let hidden = ProgressBar::hidden();
    let err = import_qlib(&opts("csi300", "csi500-proxy", "a"), &hidden)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs --instruments all"), "{err}");
    let err = import_qlib(&opts("all", "csi800", "b"), &hidden)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("csi800") && err.contains("csi500-proxy"),
        "{err}"
    );
    // The slice's 20 stocks are all CSI300 members at some time: members are those that are not
    // that day, fewer than 500; the dump has no SH000905, and the import says so.
    let s = import_qlib(&opts("all", "csi500-proxy", "c"), &hidden).unwrap();
    assert!(
        s.warnings.iter().any(|w| w.contains("no SH000905")),
        "{:?}",
        s.warnings
    );
    let panel = Panel::open(&tmp.path().join("c")).unwrap();
    assert_eq!(panel.meta().benchmarks[0].name, "csi500-proxy");
    let (t_len, n) = (panel.n_dates(), panel.n_stocks());
    let w = panel.benchmark_weights("csi500-proxy").unwrap();
    let june = panel
        .meta()
        .dates
        .iter()
        .position(|d| d.as_str() >= "2012-06-01")
        .unwrap();
    assert!(w[..june * n].iter().all(|&x| x == 0.0));
    for t in june..t_len {
        let total: f64 = w[t * n..(t + 1) * n].iter().map(|&x| f64::from(x)).sum();
        assert!(total == 0.0 || (total - 1.0).abs() < 1e-4, "{total}");
    }
    assert!(w[june * n..].iter().any(|&x| x > 0.0));
}
