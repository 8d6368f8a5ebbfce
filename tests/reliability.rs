//! Nothing silently wrong (issue 16): a resumed run or a merge refuses another panel and says what
//! differs; importers turn impossible prices into counted, untradable gaps; duplicate factor rows
//! are refused; two processes on one run folder never train one job; outputs are checked before
//! any work; eval without industries neutralizes by size; silent defaults are refused or warned
//! about; messages name dates, flags and the fix. Everything goes through the built binary.

use alphanet::data::panel::{flags, write_panel, Panel, PanelArrays, PanelMeta};
use alphanet::data::synth::{synth_arrays, write_synth, SynthConfig};

mod common;
use common::{alphanet, fixture, ok, shared, SMALL};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The command failed with the CLI's error status, and its stderr (returned) has no panic.
fn failed(o: Output) -> String {
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected a clean error\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A small `run` on `panel` into `out`: v2, 3 windows × `seeds` seeds, one epoch each.
fn run_cmd(panel: &Path, out: &Path, seeds: usize) -> Command {
    let mut cmd = alphanet();
    cmd.args(["run", "--panel"])
        .arg(panel)
        .arg("--out")
        .arg(out)
        .args(["--variants", "v2", "--seeds", &seeds.to_string()])
        .args(["--start", "2016-09-01", "--retrain-every", "3M"])
        .args(["--insample-days", "200", "--epochs", "1", "--hidden", "4"])
        .args(["--batch", "500", "--threads", "1"]);
    cmd
}

/// The synthetic panel's arrays with `edit` applied, written at `dir`.
fn edited_panel(
    dir: &Path,
    cfg: &SynthConfig,
    edit: impl FnOnce(&mut PanelMeta, &mut PanelArrays),
) {
    let (mut meta, mut arrays) = synth_arrays(cfg).unwrap();
    edit(&mut meta, &mut arrays);
    write_panel(dir, &meta, &arrays).unwrap();
}

/// Swaps the data of stocks `a` and `b` in every `[T, N, ...]` array.
fn swap_stocks(meta: &PanelMeta, x: &mut PanelArrays, a: usize, b: usize) {
    let (t_len, n) = (meta.n_dates(), meta.n_stocks());
    fn swap<T: Copy>(v: &mut [T], t_len: usize, n: usize, a: usize, b: usize) {
        let k = v.len() / (t_len * n);
        for t in 0..t_len {
            for j in 0..k {
                v.swap((t * n + a) * k + j, (t * n + b) * k + j);
            }
        }
    }
    swap(&mut x.features, t_len, n, a, b);
    swap(&mut x.price, t_len, n, a, b);
    swap(&mut x.tradable, t_len, n, a, b);
    swap(&mut x.styles, t_len, n, a, b);
    swap(&mut x.industry, t_len, n, a, b);
    swap(&mut x.size, t_len, n, a, b);
    if let Some(o) = &mut x.oracle {
        swap(o, t_len, n, a, b);
    }
    if let Some(o) = &mut x.index {
        swap(o, t_len, n, a, b);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Panel identity on resume and merge.

#[test]
fn resume_and_merge_refuse_another_panel_and_say_what_differs() {
    let root = fixture().root.join("identity");
    std::fs::create_dir_all(&root).unwrap();
    let panel = root.join("panel");
    write_synth(&SMALL, &panel).unwrap();
    let run = root.join("run");
    ok(run_cmd(&panel, &run, 1).output().unwrap());
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(recorded["panel"]["codes"].as_array().unwrap().len(), 40);
    assert_eq!(recorded["panel"]["dates"].as_array().unwrap().len(), 360);
    assert!(recorded["panel"]["files"][0]["hash"].is_string());

    // The same panel moved elsewhere: merge accepts it.
    let moved = root.join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    for e in std::fs::read_dir(&panel).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), moved.join(e.file_name())).unwrap();
    }
    ok(alphanet()
        .arg("merge")
        .arg(&run)
        .arg("--panel")
        .arg(&moved)
        .output()
        .unwrap());

    // Two stocks' data swapped, codes unchanged: merge would give SH..0's values to SH..1.
    let swapped = root.join("swapped");
    edited_panel(&swapped, &SMALL, |m, a| swap_stocks(m, a, 0, 1));
    let err = failed(
        alphanet()
            .arg("merge")
            .arg(&run)
            .arg("--panel")
            .arg(&swapped)
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("is not the panel") && err.contains("contents of features.npy"),
        "{err}"
    );
    assert!(err.contains("--panel"), "the fix is named: {err}");

    // The codes relabelled (the data in place): named by position and code.
    let relabelled = root.join("relabelled");
    edited_panel(&relabelled, &SMALL, |m, _| m.codes.swap(0, 1));
    let codes = Panel::open(&panel).unwrap().meta().codes.clone();
    let err = failed(
        alphanet()
            .arg("merge")
            .arg(&run)
            .arg("--panel")
            .arg(&relabelled)
            .output()
            .unwrap(),
    );
    assert!(
        err.contains(&format!(
            "codes: 2 of 40 differ, first at position 0: {} in the run, {} in this panel",
            codes[0], codes[1]
        )),
        "{err}"
    );

    // The panel replaced at the same path by one of the same shape (another seed): resuming is
    // refused before any job is reused.
    std::fs::rename(&panel, root.join("original")).unwrap();
    // While nothing is at the run's panel path, merge says to pass the panel, not to make one.
    let err = failed(alphanet().arg("merge").arg(&run).output().unwrap());
    assert!(
        err.contains("no longer there")
            && err.contains("--panel NEW_DIR")
            && !err.contains("synth"),
        "{err}"
    );
    write_synth(&SynthConfig { seed: 2, ..SMALL }, &panel).unwrap();
    let before = std::fs::read_to_string(run.join("manifest.json")).unwrap();
    let err = failed(run_cmd(&panel, &run, 1).output().unwrap());
    assert!(
        err.contains("is not the panel") && err.contains("contents of"),
        "{err}"
    );
    assert!(
        err.contains(&root.join("original").display().to_string())
            || err.contains("resume with the panel"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("manifest.json")).unwrap(),
        before,
        "nothing was rewritten"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Impossible prices on import (and 7: the counts and warnings the importers print).

/// Copies of `files` (baostock CSVs) into `dir`, with `edit(file, header, rows)` applied.
fn baostock_copy(
    dir: &Path,
    files: &[&str],
    edit: impl Fn(&str, &[String], &mut Vec<Vec<String>>),
) {
    std::fs::create_dir_all(dir).unwrap();
    for f in files {
        let text = std::fs::read_to_string(shared(&format!("baostock-csi300/{f}.csv"))).unwrap();
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
        let mut rows: Vec<Vec<String>> = lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        edit(f, &header, &mut rows);
        let mut out = header.join(",") + "\n";
        for r in rows {
            out += &(r.join(",") + "\n");
        }
        std::fs::write(dir.join(format!("{f}.csv")), out).unwrap();
    }
}

fn col(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

fn cell(p: &Panel, date: &str, code: &str) -> usize {
    let t = p.date_index(date).unwrap();
    let i = p.meta().codes.iter().position(|c| c == code).unwrap();
    t * p.n_stocks() + i
}

fn price(p: &Panel, date: &str, code: &str, field: &str) -> f64 {
    let k = p.price_field(field).unwrap();
    p.price()[cell(p, date, code) * p.meta().price_fields.len() + k] as f64
}

#[test]
fn baostock_import_turns_impossible_prices_into_counted_untradable_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let files = ["sh.600000", "sh.600009", "sh.600030"];
    // Row 100 of sh.600000: close ×10 (above its high); row 200 of sh.600009: close −5.
    let bad_row = |f: &str| match f {
        "sh.600000" => Some((100, "x10")),
        "sh.600009" => Some((200, "neg")),
        _ => None,
    };
    let clean = tmp.path().join("clean");
    baostock_copy(&clean, &files, |_, _, _| {});
    let dirty = tmp.path().join("dirty");
    let dates = std::cell::RefCell::new(Vec::new());
    baostock_copy(&dirty, &files, |f, header, rows| {
        if let Some((r, how)) = bad_row(f) {
            let c = col(header, "close");
            let close: f64 = rows[r][c].parse().unwrap();
            rows[r][c] = match how {
                "x10" => format!("{:.2}", close * 10.0),
                _ => "-5.0".into(),
            };
            dates.borrow_mut().push((
                f.to_string(),
                rows[r][col(header, "date")].clone(),
                rows[r + 3][col(header, "date")].clone(),
            ));
        }
    });
    let import = |src: &Path, out: &Path| {
        alphanet()
            .args(["import", "baostock", "--src"])
            .arg(src)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    ok(import(&clean, &tmp.path().join("p-clean")));
    let o = ok(import(&dirty, &tmp.path().join("p-dirty")));
    let (_, err) = text(&o);
    assert!(
        err.contains("2 stock-days of 2 stocks have impossible prices")
            && err.contains("SH600000 (1)")
            && err.contains("SH600009 (1)"),
        "{err}"
    );
    let (a, b) = (
        Panel::open(&tmp.path().join("p-clean")).unwrap(),
        Panel::open(&tmp.path().join("p-dirty")).unwrap(),
    );
    for (f, date, later) in dates.borrow().iter() {
        let code = f.replace("sh.", "SH");
        let k = cell(&b, date, &code);
        assert_eq!(
            b.tradable()[k] & (flags::LISTED | flags::SUSPENDED),
            flags::LISTED | flags::SUSPENDED,
            "{code} {date} is untradable"
        );
        assert!(b.features()[k * 15..(k + 1) * 15]
            .iter()
            .all(|x| x.is_nan()));
        // The adjustment is not thrown off: later adjusted prices and returns are the clean ones.
        for field in ["close", "vwap", "open"] {
            let (x, y) = (
                price(&a, later, &code, field),
                price(&b, later, &code, field),
            );
            assert!(
                (x - y).abs() <= 1e-5 * x.abs(),
                "{code} {later} {field}: {x} vs {y}"
            );
        }
        let k = cell(&b, later, &code);
        let r1 = b.features()[k * 15];
        assert!(r1.abs() < 0.2, "{code} {later}: return1 {r1}");
    }
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("p-dirty/meta.json")).unwrap(),
    )
    .unwrap();
    let checks = &meta["provenance"]["row_checks"];
    assert_eq!(checks["invalid_rows"], 2, "{checks}");
    assert_eq!(checks["invalid_rows_per_stock"]["SH600000"], 1, "{checks}");
    assert_eq!(checks["invalid_rows_per_stock"]["SH600009"], 1, "{checks}");
}

/// A qlib root with the calendar of the shared data and copies of `codes`' bins (no index).
fn qlib_copy(root: &Path, codes: &[&str]) {
    std::fs::create_dir_all(root.join("instruments")).unwrap();
    std::os::unix::fs::symlink(shared("ashare-qlib/calendars"), root.join("calendars")).unwrap();
    let all = std::fs::read_to_string(shared("ashare-qlib/instruments/all.txt")).unwrap();
    let lines: String = all
        .lines()
        .filter(|l| codes.contains(&l.split('\t').next().unwrap()))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(root.join("instruments/all.txt"), lines).unwrap();
    for c in codes {
        let dst = root.join("features").join(c.to_lowercase());
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(shared(&format!("ashare-qlib/features/{c}"))).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// `alphanet import qlib --src root --out out --start 2015-01-01`, which must succeed; its stderr.
fn import_qlib_from_2015(root: &Path, out: &Path) -> String {
    let o = ok(alphanet()
        .args(["import", "qlib", "--src"])
        .arg(root)
        .arg("--out")
        .arg(out)
        .args(["--start", "2015-01-01"])
        .output()
        .unwrap());
    text(&o).1
}

/// Sets element `e` (1-based after the start index) of a `.day.bin` to `v`.
fn set_bin(path: &Path, e: usize, v: f32) {
    let mut b = std::fs::read(path).unwrap();
    b[4 * e..4 * e + 4].copy_from_slice(&v.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

#[test]
fn qlib_import_counts_impossible_and_missing_values_and_says_beta_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("qlib");
    let codes = ["SH600000", "SH600036"];
    qlib_copy(&root, &codes);
    let f = |c: &str, field: &str| {
        root.join("features")
            .join(c.to_lowercase())
            .join(format!("{field}.day.bin"))
    };
    let high: Vec<f32> = std::fs::read(f("SH600000", "high"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    // Element 3000: close 10× its high; element 3100: close NaN; element 3200: volume −1.
    set_bin(&f("SH600000", "close"), 3000, high[3000] * 10.0);
    set_bin(&f("SH600000", "close"), 3100, f32::NAN);
    set_bin(&f("SH600036", "volume"), 3200, -1.0);
    let out = tmp.path().join("panel");
    let err = import_qlib_from_2015(&root, &out);
    assert!(
        err.contains("2 stock-days of 2 stocks have impossible prices")
            && err.contains("SH600000 (1)"),
        "{err}"
    );
    assert!(
        err.contains("1 stock-days of 1 stocks have no prices"),
        "{err}"
    );
    assert!(
        err.contains("no SH000300 index") && err.contains("cap-weighted"),
        "the Beta fallback is said: {err}"
    );
    let p = Panel::open(&out).unwrap();
    let start: f32 = f32::from_le_bytes(
        std::fs::read(f("SH600000", "close")).unwrap()[..4]
            .try_into()
            .unwrap(),
    );
    let calendar = std::fs::read_to_string(shared("ashare-qlib/calendars/day.txt")).unwrap();
    let date = calendar.lines().nth(start as usize + 3000 - 1).unwrap();
    let k = cell(&p, date, "SH600000");
    assert_ne!(p.tradable()[k] & flags::SUSPENDED, 0, "{date}");
    let checks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    let checks = &checks["provenance"]["row_checks"];
    assert_eq!(checks["invalid_rows_per_stock"]["SH600000"], 1, "{checks}");
    assert_eq!(checks["invalid_rows_per_stock"]["SH600036"], 1, "{checks}");
    assert_eq!(
        checks["rows_without_prices_per_stock"]["SH600000"], 1,
        "{checks}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Duplicate (date, code) rows in a factor CSV.

/// The fixture's oracle as a long factor CSV over dates 100..300: `row(t, i, code, value)` gives
/// the code and value text written for each cell, or `None` to leave the cell out.
fn oracle_csv(row: impl Fn(usize, usize, &str, f32) -> Option<(String, String)>) -> String {
    let panel = Panel::open(&fixture().panel).unwrap();
    let (n, oracle) = (panel.n_stocks(), panel.oracle().unwrap());
    let mut csv = String::from("date,code,factor\n");
    for t in 100..300 {
        for i in 0..n {
            if let Some((code, v)) = row(t, i, &panel.meta().codes[i], oracle[t * n + i]) {
                csv += &format!("{},{code},{v}\n", panel.meta().dates[t]);
            }
        }
    }
    csv
}

#[test]
fn duplicate_factor_rows_are_refused_with_their_lines() {
    let f = fixture();
    let mut csv =
        oracle_csv(|_, _, code, v| v.is_finite().then(|| (code.to_string(), v.to_string())));
    let first = csv.lines().nth(1).unwrap().to_string();
    let (d, rest) = first.split_once(',').unwrap();
    let code = rest.split(',').next().unwrap();
    csv += &format!("{d},{code},99\n");
    let lines = csv.lines().count();
    let path = f.root.join("dup.csv");
    std::fs::write(&path, csv).unwrap();
    for cmd in ["eval", "enhance"] {
        let out = f.root.join(format!("dup-{cmd}"));
        let err = failed(
            alphanet()
                .arg(cmd)
                .arg("--panel")
                .arg(&f.panel)
                .arg("--factor")
                .arg(format!("f={}", path.display()))
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap(),
        );
        assert!(
            err.contains("1 duplicate (date, code) row")
                && err.contains(&format!("{d} {code} on lines 2 and {lines}")),
            "{cmd}: {err}"
        );
        assert!(!out.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Two processes on one run folder.

fn job_ids(run: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run.join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn ran(stdout: &str) -> usize {
    let at = stdout.find("ran ").expect(stdout);
    stdout[at + 4..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn two_processes_on_one_run_folder_never_train_the_same_job() {
    let f = fixture();
    let run = f.root.join("concurrent");
    let children: Vec<_> = (0..2)
        .map(|_| {
            run_cmd(&f.panel, &run, 2)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| ok(c.wait_with_output().unwrap()))
        .collect();
    let mut total = 0;
    for o in &outputs {
        let (out, err) = text(o);
        assert!(!err.contains("delete"), "{err}");
        total += ran(&out);
        // Every job of this process's count gets a line, its own or another's: [1/N] .. [N/N].
        let counts: Vec<(usize, usize)> = err
            .lines()
            .filter_map(|l| l.strip_prefix('[')?.split_once(']'))
            .filter_map(|(c, _)| c.split_once('/'))
            .map(|(k, n)| (k.parse().unwrap(), n.parse().unwrap()))
            .collect();
        let n = counts.first().map_or(0, |c| c.1);
        assert_eq!(counts, (1..=n).map(|k| (k, n)).collect::<Vec<_>>(), "{err}");
    }
    assert_eq!(total, 6, "each of the 6 jobs trained exactly once");
    assert_eq!(job_ids(&run).len(), 6);
    assert!(run.join("factors/v2/factor.npy").is_file());
    let locks: Vec<_> = std::fs::read_dir(run.join("locks")).unwrap().collect();
    assert!(locks.is_empty(), "locks left: {locks:?}");

    // A lock left by a process that died is taken over.
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let run = f.root.join("stale");
    std::fs::create_dir_all(run.join("locks")).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::write(
        run.join("locks/v2-w000-s00.lock"),
        serde_json::json!({"host": host.trim(), "pid": dead, "nonce": "x"}).to_string(),
    )
    .unwrap();
    let o = ok(run_cmd(&f.panel, &run, 1).output().unwrap());
    let (out, err) = text(&o);
    assert!(err.contains("took over the stale lock"), "{err}");
    assert_eq!(ran(&out), 3);
}

// ---------------------------------------------------------------------------------------------
// 5. Outputs checked before loading data.

#[test]
fn an_uncreatable_output_is_refused_before_any_work() {
    let f = fixture();
    let blocker = f.root.join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let out = blocker.join("ckpt");
    // The panel does not exist either: the output is checked first, so the error names it.
    let err = failed(
        alphanet()
            .args(["train", "--panel"])
            .arg(f.root.join("no-panel"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("cannot create output")
            && err.contains("a-file")
            && err.contains("not a directory"),
        "{err}"
    );
    for cmd in [
        vec!["eval", "--factor", "x=none.csv"],
        vec!["enhance", "--factor", "x=none.csv"],
    ] {
        let err = failed(
            alphanet()
                .args(&cmd)
                .arg("--panel")
                .arg(f.root.join("no-panel"))
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap(),
        );
        assert!(err.contains("cannot create output"), "{cmd:?}: {err}");
    }
    let probes: Vec<_> = std::fs::read_dir(&f.root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("probe"))
        .collect();
    assert!(probes.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. eval without industry data.

#[test]
fn eval_without_industries_neutralizes_by_size_and_says_so() {
    let f = fixture();
    let panel = f.root.join("no-industry");
    edited_panel(&panel, &SMALL, |m, a| {
        m.industry_names.clear();
        a.industry.fill(-1);
    });
    let out = f.root.join("no-industry-eval");
    let o = ok(alphanet()
        .arg("eval")
        .arg("--panel")
        .arg(&panel)
        .arg("--factor")
        .arg(format!("oracle={}", panel.join("oracle.npy").display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let (_, err) = text(&o);
    assert!(err.contains("no industry data"), "{err}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert!(
        metrics["neutralization"]
            .as_str()
            .unwrap()
            .contains("no industry data"),
        "{metrics}"
    );
    assert!(metrics["factors"][0]["rank_ic"]["mean"].as_f64().unwrap() > 0.05);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("log market cap only"), "{report}");
}

// ---------------------------------------------------------------------------------------------
// 7. Silent defaults.

#[test]
fn zero_sample_every_and_patience_are_refused() {
    let f = fixture();
    for (flag, out) in [("--sample-every", "se0"), ("--patience", "pa0")] {
        let err = failed(
            alphanet()
                .args(["train", "--panel"])
                .arg(&f.panel)
                .arg("--out")
                .arg(f.root.join(out))
                .args([flag, "0", "--epochs", "1", "--hidden", "4"])
                .output()
                .unwrap(),
        );
        assert!(err.contains(&format!("{flag} 0")), "{err}");
        assert!(!f.root.join(out).exists());
    }
}

#[test]
fn an_industry_file_that_matches_nothing_is_refused_and_gaps_are_warned() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("bs");
    baostock_copy(&src, &["sh.600000", "sh.600009"], |_, _, _| {});
    let none = tmp.path().join("none.csv");
    std::fs::write(
        &none,
        "updateDate,code,code_name,industry\n2026-03-09,sz.399999,x,Banks\n",
    )
    .unwrap();
    let import = |industry: &Path, out: &str| {
        alphanet()
            .args(["import", "baostock", "--src"])
            .arg(&src)
            .arg("--out")
            .arg(tmp.path().join(out))
            .arg("--industry")
            .arg(industry)
            .output()
            .unwrap()
    };
    let err = failed(import(&none, "p1"));
    assert!(err.contains("none of the 2 codes"), "{err}");
    assert!(!tmp.path().join("p1").exists());
    let some = tmp.path().join("some.csv");
    std::fs::write(
        &some,
        "updateDate,code,code_name,industry\n2026-03-09,sh.600000,x,Banks\n",
    )
    .unwrap();
    let (_, err) = text(&ok(import(&some, "p2")));
    assert!(
        err.contains("warning: --industry")
            && err.contains("no industry for 1 of 2 stocks")
            && err.contains("SH600009"),
        "{err}"
    );
}

#[test]
fn a_date_without_data_is_warned_about() {
    let f = fixture();
    let panel = f.root.join("empty-date");
    let (meta, arrays) = synth_arrays(&SMALL).unwrap();
    let t = 250;
    let (n, k) = (meta.n_stocks(), 15);
    let mut arrays = arrays;
    arrays.features[t * n * k..(t + 1) * n * k].fill(f32::NAN);
    write_panel(&panel, &meta, &arrays).unwrap();
    let ckpt = f.root.join("empty-date-ckpt");
    let o = ok(alphanet()
        .args(["train", "--panel"])
        .arg(&panel)
        .arg("--out")
        .arg(&ckpt)
        .args([
            "--to",
            &meta.dates[200],
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--threads",
            "1",
        ])
        .output()
        .unwrap());
    let (_, err) = text(&o);
    assert!(!err.contains("no finite feature"), "{err}");
    let o = ok(alphanet()
        .args(["predict", "--checkpoint"])
        .arg(&ckpt)
        .arg("--panel")
        .arg(&panel)
        .args(["--from", &meta.dates[240], "--to", &meta.dates[300]])
        .arg("--out")
        .arg(f.root.join("empty-date-pred"))
        .output()
        .unwrap());
    let (_, err) = text(&o);
    assert!(
        err.contains("warning")
            && err.contains("1 date(s) have no finite feature for any stock")
            && err.contains(&meta.dates[t]),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Messages.

#[test]
fn messages_name_dates_flags_and_what_is_wrong() {
    let f = fixture();
    let dates = Panel::open(&f.panel).unwrap().meta().dates.clone();
    let err = failed(
        alphanet()
            .args(["train", "--panel"])
            .arg(&f.panel)
            .arg("--out")
            .arg(f.root.join("m-train"))
            .args(["--from", &dates[200], "--to", &dates[100]])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains(&format!(
            "--from {} is not before --to {}",
            dates[200], dates[100]
        )) && !err.contains("Some("),
        "{err}"
    );
    let err = failed(
        alphanet()
            .args(["train", "--panel"])
            .arg(&f.panel)
            .arg("--out")
            .arg(f.root.join("m-train"))
            .args(["--long-weight", "-1"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("--long-weight -1: must be a positive number"),
        "{err}"
    );
    let err = failed(
        alphanet()
            .arg("eval")
            .arg("--panel")
            .arg(&f.panel)
            .args(["--factor", "x=f.csv", "--cost", "-0.1"])
            .arg("--out")
            .arg(f.root.join("m-eval"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("--cost -0.1 in [0, 0.5)"), "{err}");
    // Found by the fuzzer in run.json, reachable from the command line too: a period past the
    // year 9999 and a split whose product overflows.
    let err = failed(
        alphanet()
            .args(["run", "--panel"])
            .arg(&f.panel)
            .arg("--out")
            .arg(f.root.join("m-run"))
            .args(["--start", "2016-09-01", "--retrain-every", "200000M"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("--retrain-every 200000M: must be 1 to 1200 months"),
        "{err}"
    );
    assert!(!f.root.join("m-run").exists());

    // A checkpoint to damage.
    let ckpt = f.root.join("m-ckpt");
    ok(alphanet()
        .args(["train", "--panel"])
        .arg(&f.panel)
        .arg("--out")
        .arg(&ckpt)
        .args([
            "--to",
            &dates[150],
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--threads",
            "1",
        ])
        .output()
        .unwrap());
    let predict = |ckpt: &Path, panel: &Path, from: &str, out: &str| {
        alphanet()
            .args(["predict", "--checkpoint"])
            .arg(ckpt)
            .arg("--panel")
            .arg(panel)
            .args(["--from", from, "--to", &dates[300]])
            .arg("--out")
            .arg(f.root.join(out))
            .output()
            .unwrap()
    };
    let err = failed(predict(&ckpt, &f.panel, &dates[5], "m-p1"));
    assert!(
        err.contains(&dates[5]) && err.contains(&dates[29]) && !err.contains("date index"),
        "{err}"
    );
    let bad = f.root.join("m-ckpt-truncated");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(ckpt.join("config.json"), bad.join("config.json")).unwrap();
    let st = std::fs::read(ckpt.join("model.safetensors")).unwrap();
    std::fs::write(bad.join("model.safetensors"), &st[..st.len() / 2]).unwrap();
    let err = failed(predict(&bad, &f.panel, &dates[100], "m-p2"));
    assert!(
        err.contains("model.safetensors")
            && err.contains("truncated or damaged")
            && err.contains("re-create"),
        "{err}"
    );

    // A header whose dtype was edited from <f4 to <f8 is not "truncated".
    let edited = f.root.join("m-dtype");
    write_synth(&SMALL, &edited).unwrap();
    let mut size = std::fs::read(edited.join("size.npy")).unwrap();
    let at = size.windows(3).position(|w| w == b"<f4").unwrap();
    size[at..at + 3].copy_from_slice(b"<f8");
    std::fs::write(edited.join("size.npy"), size).unwrap();
    let err = failed(alphanet().arg("panel-info").arg(&edited).output().unwrap());
    assert!(
        err.contains("size.npy")
            && err.contains("expected '<f4', found '<f8'")
            && !err.contains("truncated"),
        "{err}"
    );

    // A directory in place of features.npy is not "missing".
    let dir = f.root.join("m-dir");
    write_synth(&SMALL, &dir).unwrap();
    std::fs::remove_file(dir.join("features.npy")).unwrap();
    std::fs::create_dir(dir.join("features.npy")).unwrap();
    let err = failed(alphanet().arg("panel-info").arg(&dir).output().unwrap());
    assert!(
        err.contains("features.npy is a directory") && !err.contains("missing"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Model sizes (issue 28): one width limit at train time and at load time, checked before any
// data is read; a model that cannot fit in memory is refused with the estimate.

/// `alphanet train --epochs 1 ARGS --panel <fixture> --out <fixture>/OUT`, which must fail with
/// a clean error (returned), leaving no output behind.
fn train_refused(args: &[&str], out: &str) -> String {
    let f = fixture();
    let err = failed(
        alphanet()
            .args(["train", "--epochs", "1"])
            .args(args)
            .arg("--panel")
            .arg(&f.panel)
            .arg("--out")
            .arg(f.root.join(out))
            .output()
            .unwrap(),
    );
    assert!(!f.root.join(out).exists(), "{out} was written");
    err
}

#[test]
fn a_model_too_wide_to_load_is_refused_before_training() {
    let t0 = std::time::Instant::now();
    let err = train_refused(&["--hidden", "4097"], "too-wide");
    assert!(
        err.contains("--hidden 4097") && err.contains("1 to 4096"),
        "{err}"
    );
    assert!(
        t0.elapsed().as_secs() < 5,
        "refused only after {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_model_that_cannot_fit_in_memory_is_refused_with_the_estimate() {
    let err = train_refused(
        &["--hidden", "4096", "--batch", "2000000", "--device", "cpu"],
        "too-big",
    );
    assert!(
        err.contains("GiB at batch 2000000") && err.contains("available"),
        "{err}"
    );
}

#[test]
fn two_architectures_in_one_variant_are_refused() {
    let err = train_refused(&["--variant", "v3,v1"], "two-archs");
    assert!(
        err.contains("--variant v3,v1") && err.contains("v1, v2 or v3"),
        "{err}"
    );
}

#[test]
fn merging_a_folder_that_is_not_a_run_says_so() {
    let f = fixture();
    let plain = f.root.join("not-a-run");
    std::fs::create_dir_all(&plain).unwrap();
    let err = failed(alphanet().arg("merge").arg(&plain).output().unwrap());
    assert!(err.contains("is not a run folder (no run.json)"), "{err}");
    let err = failed(
        alphanet()
            .arg("merge")
            .arg(f.root.join("no-such-run"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("no such folder"), "{err}");
}

#[test]
fn factor_csvs_take_lower_case_codes_and_count_absent_values() {
    let f = fixture();
    let csv = oracle_csv(|t, i, code, v| {
        let v = match (t, i) {
            (100, 0) => "inf".to_string(),
            (100, 1) => String::new(),
            (100, 2) => "NaN".to_string(),
            _ => v.to_string(),
        };
        Some((code.to_ascii_lowercase(), v))
    });
    let panel = Panel::open(&f.panel).unwrap();
    let (n, oracle) = (panel.n_stocks(), panel.oracle().unwrap());
    let path = f.root.join("lower.csv");
    std::fs::write(&path, csv).unwrap();
    let o = ok(alphanet()
        .arg("eval")
        .arg("--panel")
        .arg(&f.panel)
        .arg("--factor")
        .arg(format!("f={}", path.display()))
        .arg("--out")
        .arg(f.root.join("lower-eval"))
        .output()
        .unwrap());
    let (_, err) = text(&o);
    let absent = 3
        + (100..300)
            .flat_map(|t| (0..n).map(move |i| (t, i)))
            .filter(|&(t, i)| !(oracle[t * n + i].is_finite() || t == 100 && i < 3))
            .count();
    assert!(
        err.contains(&format!(
            "{absent} row(s) have an empty, NaN or infinite factor value"
        )),
        "{err}"
    );
}

#[test]
fn an_unknown_alphanet_cuda_value_is_an_error_not_a_fallback() {
    let f = fixture();
    let err = failed(
        alphanet()
            .env("ALPHANET_CUDA", "foo")
            .args(["train", "--epochs", "1", "--device", "auto", "--panel"])
            .arg(&f.panel)
            .arg("--out")
            .arg(f.root.join("cuda-foo"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("ALPHANET_CUDA=\"foo\"") && err.contains("emulator"),
        "{err}"
    );
    assert!(!f.root.join("cuda-foo").exists());
}

// ---------------------------------------------------------------------------------------------
// Issue 28, round two: dates outside what a panel can train or predict, debris in a run folder,
// a panel that moved, rows with infinite prices or a zero factor, and progress lines without gaps.

#[test]
fn train_and_predict_say_which_dates_have_no_picture_or_no_label() {
    let f = fixture();
    let dates = Panel::open(&f.panel).unwrap().meta().dates.clone();
    let first = &dates[29];
    let err = train_refused(&["--from", &dates[5]], "early-from");
    assert!(
        err.contains(&format!("--from {}", dates[5]))
            && err.contains(&format!("choose --from on or after {first}")),
        "{err}"
    );
    let last = dates.len() - 1;
    let out = f.root.join("late-to");
    let o = ok(alphanet()
        .args(["train", "--epochs", "1", "--hidden", "4", "--threads", "1"])
        .args(["--from", &dates[last - 200], "--to", &dates[last]])
        .arg("--panel")
        .arg(&f.panel)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let (_, err) = text(&o);
    assert!(
        err.contains(&format!("--to {}", dates[last]))
            && err.contains("11 of the in-sample dates give no sample")
            && err.contains(&format!(
                "the last date with a label is {}",
                dates[last - 11]
            )),
        "{err}"
    );
    let err = failed(
        alphanet()
            .arg("predict")
            .arg("--checkpoint")
            .arg(&out)
            .arg("--panel")
            .arg(&f.panel)
            .args(["--from", &dates[3], "--to", &dates[100]])
            .arg("--out")
            .arg(f.root.join("early-predict.csv"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains(&format!("it starts on {}", dates[3]))
            && err.contains(&format!("choose --from on or after {first}"))
            && !err.contains("past the end"),
        "{err}"
    );
}

#[test]
fn a_job_folder_without_its_record_is_refused_before_any_training() {
    let f = fixture();
    let run = f.root.join("debris");
    ok(run_cmd(&f.panel, &run, 1).output().unwrap());
    let ids = job_ids(&run);
    std::fs::remove_file(run.join("jobs").join(&ids[1]).join("job.json")).unwrap();
    let t0 = std::time::Instant::now();
    let o = run_cmd(&f.panel, &run, 1).output().unwrap();
    let (out, _) = text(&o);
    let err = failed(o);
    assert!(
        err.contains(&ids[1]) && err.contains("an unfinished job directory (no job.json)"),
        "{err}"
    );
    assert!(
        !err.contains("[1/1]") && !out.contains("ran "),
        "trained before refusing: {err}"
    );
    assert!(t0.elapsed().as_secs() < 20, "{:?}", t0.elapsed());
}

#[test]
fn qlib_import_names_the_field_of_an_infinite_price_or_a_zero_factor() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("qlib");
    qlib_copy(&root, &["SH600000"]);
    let f = |field: &str| root.join(format!("features/sh600000/{field}.day.bin"));
    set_bin(&f("high"), 3000, f32::INFINITY);
    for e in 3100..3110 {
        set_bin(&f("factor"), e, 0.0);
    }
    let out = tmp.path().join("panel");
    let err = import_qlib_from_2015(&root, &out);
    assert!(
        err.contains("11 stock-days of 1 stocks have impossible prices or volume")
            && err.contains("factor is not positive: 10")
            && err.contains("high is infinite: 1")
            && !err.contains("have no prices"),
        "{err}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    let by = &meta["provenance"]["row_checks"]["invalid_rows_by_reason"];
    assert_eq!(by["factor is not positive"], 10, "{by}");
    assert_eq!(by["high is infinite"], 1, "{by}");
}

#[test]
fn a_baostock_turnover_of_zero_on_a_traded_day_is_missing_not_infinite() {
    let tmp = tempfile::tempdir().unwrap();
    let date = std::cell::RefCell::new(String::new());
    let src = tmp.path().join("src");
    baostock_copy(&src, &["sh.600000"], |_, header, rows| {
        let r = rows
            .iter()
            .position(|row| {
                row[col(header, "date")].as_str() > "2020-01-01"
                    && row[col(header, "volume")].parse::<f64>().unwrap_or(0.0) > 0.0
            })
            .unwrap();
        rows[r][col(header, "turn")] = "0".into();
        *date.borrow_mut() = rows[r][col(header, "date")].clone();
    });
    let out = tmp.path().join("panel");
    ok(alphanet()
        .args(["import", "baostock", "--src"])
        .arg(&src)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let p = Panel::open(&out).unwrap();
    let k = cell(&p, &date.borrow(), "SH600000");
    let row = &p.features()[k * 15..(k + 1) * 15];
    assert!(row.iter().all(|x| !x.is_infinite()), "{row:?}");
    for (j, name) in p.meta().feature_names.iter().enumerate() {
        assert_eq!(row[j].is_nan(), name.contains("turn"), "{name}: {}", row[j]);
    }
}

#[test]
fn an_activation_only_v1_can_use_or_that_does_not_exist_is_refused() {
    let err = train_refused(&["--activation", "tanh"], "tanh-v2");
    assert!(
        err.contains("--activation tanh: only v1 has a hidden Dense layer"),
        "{err}"
    );
    let err = train_refused(&["--variant", "v1", "--activation", "sigmoid"], "sigmoid");
    assert!(
        err.contains("--activation sigmoid: expected one of relu, tanh"),
        "{err}"
    );
}
