//! Fuzzing the inputs (issue 16, item 9): every panel file, checkpoint file, run-folder file and
//! CSV/bin input is damaged at random (truncated, bytes flipped, header or field edited, lines
//! dropped or repeated) many times, and the command reading it must end in the CLI's typed error
//! (exit status 2, one `error:` line) or a valid result; never a panic, a crash or a hang, and
//! never an output left behind by a failure (neither the output nor a temp sibling).
//!
//! Deterministic: fixed seeds, a fixed number of cases per target; about 300 runs of the binary
//! on tiny inputs, spread over a few threads.

use alphanet::data::npy::NpyArray;
use alphanet::data::panel::Panel;
use alphanet::data::synth::{write_synth, SynthConfig};
use alphanet::util::rng::{stream, Rng};
use rand::Rng as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::alphanet;

/// One process may take this long before it counts as a hang.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Inputs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    panel: PathBuf,
    checkpoint: PathBuf,
    factor_csv: PathBuf,
    baostock: PathBuf,
    qlib: PathBuf,
    industry: PathBuf,
    run: PathBuf,
}

/// Address-space limit of a fuzzed command (KiB): an edited size that makes a build allocate
/// absurdly fails inside it instead of taking the machine's memory.
const MEMORY_LIMIT_KIB: u64 = 4 << 20;

/// `cmd` run under [`MEMORY_LIMIT_KIB`] (through `sh -c 'ulimit -v ..; exec ..'`).
fn limited(cmd: &Command) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    c
}

fn must(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(base, &e.path(), out);
            } else {
                out.push(e.path().strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Business days from 2020-01-02 (Thursday), `n` of them.
fn business_days(n: usize) -> Vec<String> {
    use alphanet::data::calendar::{format_date, parse_date, weekday};
    let mut d = parse_date("2020-01-02").unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        if weekday(d) < 5 {
            out.push(format_date(d));
        }
        d += 1;
    }
    out
}

/// Random-walk daily bars of `n_stocks` stocks: (open, high, low, close, volume) per day.
fn bars(rng: &mut Rng, days: usize) -> Vec<[f64; 5]> {
    let mut close = 10.0;
    (0..days)
        .map(|_| {
            let open = close * (1.0 + 0.01 * (rng.gen::<f64>() - 0.5));
            close = (open * (1.0 + 0.04 * (rng.gen::<f64>() - 0.5))).max(1.0);
            let high = open.max(close) * (1.0 + 0.01 * rng.gen::<f64>());
            let low = open.min(close) * (1.0 - 0.01 * rng.gen::<f64>());
            [open, high, low, close, 1e6 * (1.0 + rng.gen::<f64>())]
        })
        .collect()
}

const CODES: [&str; 3] = ["sh.600000", "sh.600009", "sz.000001"];

fn setup() -> Inputs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let panel = root.join("panel");
    write_synth(
        &SynthConfig {
            stocks: 24,
            days: 170,
            seed: 3,
        },
        &panel,
    )
    .unwrap();
    let p = Panel::open(&panel).unwrap();
    let dates = p.meta().dates.clone();
    let checkpoint = root.join("ckpt");
    must(
        alphanet()
            .args(["train", "--panel"])
            .arg(&panel)
            .arg("--out")
            .arg(&checkpoint)
            .args(["--epochs", "1", "--hidden", "3", "--threads", "1"]),
    );
    let n = p.n_stocks();
    let oracle = p.oracle().unwrap();
    let mut csv = String::from("date,code,factor\n");
    for t in 40..150 {
        for i in 0..n {
            if oracle[t * n + i].is_finite() {
                csv += &format!("{},{},{}\n", dates[t], p.meta().codes[i], oracle[t * n + i]);
            }
        }
    }
    let factor_csv = root.join("factor.csv");
    std::fs::write(&factor_csv, csv).unwrap();

    // baostock CSVs and a qlib dump of the same three random walks.
    let mut rng = stream(11, "fuzz-bars");
    let days = business_days(70);
    let baostock = root.join("baostock");
    let qlib = root.join("qlib");
    std::fs::create_dir_all(&baostock).unwrap();
    std::fs::create_dir_all(qlib.join("calendars")).unwrap();
    std::fs::create_dir_all(qlib.join("instruments")).unwrap();
    std::fs::write(qlib.join("calendars/day.txt"), days.join("\n") + "\n").unwrap();
    let mut instruments = String::new();
    for code in CODES {
        let b = bars(&mut rng, days.len());
        let mut text = String::from(
            "date,code,open,high,low,close,preclose,volume,amount,turn,tradestatus,isST,pbMRQ,peTTM\n",
        );
        let mut prev = b[0][3];
        for (d, x) in days.iter().zip(&b) {
            text += &format!(
                "{d},{code},{:.2},{:.2},{:.2},{:.2},{:.2},{:.0},{:.0},{:.4},1,0,1.5,12.0\n",
                x[0],
                x[1],
                x[2],
                x[3],
                prev,
                x[4],
                x[4] * (x[1] + x[2]) / 2.0,
                x[4] / 1e8
            );
            prev = x[3];
        }
        std::fs::write(baostock.join(format!("{code}.csv")), text).unwrap();
        let upper = code.replace('.', "").to_uppercase();
        instruments += &format!("{upper}\t{}\t{}\n", days[0], days[days.len() - 1]);
        let dir = qlib.join("features").join(upper.to_lowercase());
        std::fs::create_dir_all(&dir).unwrap();
        for (k, field) in ["open", "high", "low", "close", "volume", "factor"]
            .iter()
            .enumerate()
        {
            let mut bytes = 0f32.to_le_bytes().to_vec();
            for x in &b {
                let v = if k == 5 { 1.0 } else { x[k] as f32 };
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            std::fs::write(dir.join(format!("{field}.day.bin")), bytes).unwrap();
        }
    }
    std::fs::write(qlib.join("instruments/all.txt"), instruments).unwrap();
    let industry = root.join("industry.csv");
    std::fs::write(
        &industry,
        "updateDate,code,code_name,industry,industryClassification\n\
         2026-03-09,sh.600000,A,Banks,CSRC\n2026-03-09,sh.600009,B,Airports,CSRC\n\
         2026-03-09,sz.000001,C,Banks,CSRC\n",
    )
    .unwrap();

    // A finished one-window run whose merge the job files feed.
    let run = root.join("run");
    must(
        alphanet()
            .args(["run", "--panel"])
            .arg(&panel)
            .arg("--out")
            .arg(&run)
            .args(["--variants", "v2", "--seeds", "2", "--start", &dates[140]])
            .args(["--retrain-every", "1Y", "--insample-days", "100"])
            .args(["--epochs", "1", "--hidden", "3", "--threads", "1"]),
    );
    std::fs::remove_dir_all(run.join("factors")).unwrap();
    std::fs::remove_file(run.join("manifest.json")).unwrap();
    Inputs {
        _tmp: tmp,
        root,
        panel,
        checkpoint,
        factor_csv,
        baostock,
        qlib,
        industry,
        run,
    }
}

/// Damages `path` in one of several ways chosen by `rng`; returns what was done.
fn corrupt(path: &Path, rng: &mut Rng) -> String {
    let mut b = std::fs::read(path).unwrap();
    let len = b.len();
    let is_text = path
        .extension()
        .is_some_and(|e| e == "csv" || e == "json" || e == "txt");
    let how = rng.gen_range(0..if is_text { 7 } else { 5 });
    let what = match how {
        0 => {
            let k = rng.gen_range(0..len.max(1));
            b.truncate(k);
            format!("truncated to {k} of {len} bytes")
        }
        1 => {
            let flips = rng.gen_range(1..=8);
            for _ in 0..flips {
                if len > 0 {
                    let k = rng.gen_range(0..len);
                    b[k] ^= rng.gen_range(1..=255u8);
                }
            }
            format!("{flips} byte(s) flipped")
        }
        2 => {
            // A byte of the first 128 (headers) flipped or replaced by a digit / quote / comma.
            let k = rng.gen_range(0..len.clamp(1, 128));
            if len > 0 {
                b[k] = *b"0123456789'\",:-<>|{}TFnN"
                    .get(rng.gen_range(0..24))
                    .unwrap();
            }
            format!("header byte {k} replaced")
        }
        3 => {
            // The dtype or a shape digit of a .npy header, or a number somewhere in a text file.
            let text = String::from_utf8_lossy(&b).into_owned();
            let swaps: [(&str, &str); 6] = [
                ("<f4", "<f8"),
                ("<f4", "|u1"),
                ("|u1", "<i2"),
                ("<i2", "<f4"),
                ("False", "True "),
                ("(", "(1, "),
            ];
            let (a, z) = swaps[rng.gen_range(0..swaps.len())];
            if let Some(at) = text.find(a) {
                let mut out = b[..at].to_vec();
                out.extend_from_slice(z.as_bytes());
                out.extend_from_slice(&b[at + a.len()..]);
                b = out;
                format!("{a:?} -> {z:?}")
            } else {
                let digits: Vec<usize> = (0..len).filter(|&k| b[k].is_ascii_digit()).collect();
                if digits.is_empty() {
                    b.clear();
                    "emptied".into()
                } else {
                    let k = digits[rng.gen_range(0..digits.len())];
                    b[k] = b'0' + rng.gen_range(0..10u8);
                    format!("digit at {k} changed")
                }
            }
        }
        4 => {
            let k = rng.gen_range(0..=len);
            let extra: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
            b.splice(k..k, extra);
            format!("garbage inserted at {k}")
        }
        5 => {
            // Text: a line dropped or repeated (a duplicate row), or the header's fields swapped.
            let text = String::from_utf8_lossy(&b).into_owned();
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            if lines.is_empty() {
                return "empty text left".into();
            }
            let k = rng.gen_range(0..lines.len());
            match rng.gen_range(0..3) {
                0 => {
                    lines.remove(k);
                }
                1 => {
                    let l = lines[k].clone();
                    lines.push(l);
                }
                _ => {
                    let mut f: Vec<&str> = lines[0].split(',').collect();
                    if f.len() > 1 {
                        let (i, j) = (rng.gen_range(0..f.len()), rng.gen_range(0..f.len()));
                        f.swap(i, j);
                    }
                    lines[0] = f.join(",");
                }
            }
            b = (lines.join("\n") + "\n").into_bytes();
            format!("line {k} edited")
        }
        _ => {
            // Text: a number replaced by an extreme one.
            let text = String::from_utf8_lossy(&b).into_owned();
            let nums: Vec<usize> = text
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(k, _)| k)
                .collect();
            let subs = [
                "-1",
                "0",
                "1e30",
                "NaN",
                "inf",
                "-0.0",
                "99999999999",
                "\"x\"",
            ];
            let s = subs[rng.gen_range(0..subs.len())];
            if nums.is_empty() {
                return "no number".into();
            }
            let k = nums[rng.gen_range(0..nums.len())];
            let mut out = b[..k].to_vec();
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(&b[k + 1..]);
            b = out;
            format!("number at {k} -> {s}")
        }
    };
    std::fs::write(path, b).unwrap();
    what
}

/// What a successful command must have produced.
#[derive(Clone, Copy)]
enum Produces {
    Nothing,
    Factor,
    Report,
    Checkpoint,
    Panel,
    Merged,
}

fn check_output(kind: Produces, out: &Path) -> Result<(), String> {
    let json = |p: PathBuf| -> Result<(), String> {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str::<serde_json::Value>(&text)
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    match kind {
        Produces::Nothing => Ok(()),
        Produces::Factor => {
            NpyArray::<f32>::open(&out.join("factor.npy")).map_err(|e| e.to_string())?;
            std::fs::read_to_string(out.join("factor.csv"))
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Produces::Report => {
            json(out.join("metrics.json"))?;
            std::fs::read_to_string(out.join("report.md"))
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Produces::Checkpoint => alphanet::train::checkpoint::load(out)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Produces::Panel => Panel::open(out).map(|_| ()).map_err(|e| e.to_string()),
        Produces::Merged => {
            NpyArray::<f32>::open(&out.join("factors/v2/factor.npy")).map_err(|e| e.to_string())?;
            json(out.join("manifest.json"))
        }
    }
}

/// Runs `cmd` with a timeout; checks the outcome; returns whether it succeeded.
fn check(case: &str, cmd: Command, kind: Produces, out: &Path) -> bool {
    let mut child = limited(&cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("{case}: no answer in {TIMEOUT:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        !stderr.contains("panicked") && status.code().is_some(),
        "{case}: crashed ({status})\n{stderr}"
    );
    match status.code() {
        Some(0) => {
            if let Err(e) = check_output(kind, out) {
                panic!("{case}: succeeded but its output is not valid: {e}\n{stderr}");
            }
            true
        }
        Some(2) => {
            assert!(
                stderr.lines().any(|l| l.starts_with("error: ")),
                "{case}: failed without an error line\n{stderr}"
            );
            match kind {
                Produces::Nothing => {}
                // A merge writes into the run folder: no factor may be there after a failure.
                Produces::Merged => assert!(
                    !out.join("factors/v2").exists(),
                    "{case}: failed but left a merged factor"
                ),
                _ => assert!(!out.exists(), "{case}: failed but left {}", out.display()),
            }
            if let (Some(parent), Some(name)) = (out.parent(), out.file_name()) {
                let prefix = format!(".{}.tmp-", name.to_string_lossy());
                let temps: Vec<_> = std::fs::read_dir(parent)
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .collect();
                assert!(temps.is_empty(), "{case}: temp output left behind");
            }
            false
        }
        _ => panic!("{case}: exit status {status}\n{stderr}"),
    }
}

/// Builds the command of a case from the damaged copy and the output path.
type CommandFor = Box<dyn Fn(&Path, &Path) -> Command + Sync>;

/// A fuzz target: what to copy, which of its files to damage, and the command to run.
struct Target {
    name: &'static str,
    /// The pristine input directory (copied per case).
    input: PathBuf,
    /// Relative paths of the files that may be damaged.
    files: Vec<PathBuf>,
    cases: usize,
    /// Files whose every field (JSON) or header entry (`.npy`) is also edited one at a time.
    sweep: Vec<PathBuf>,
    kind: Produces,
    /// The command, given the damaged copy and the output path.
    command: CommandFor,
}

/// The JSON pointers of the leaves of `v` (of arrays, the first two elements only).
fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate().take(2) {
                leaves(x, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// Values that replace a leaf: zero, negative, a little and a lot larger, another type.
fn replacements(v: &serde_json::Value) -> Vec<serde_json::Value> {
    use serde_json::{json, Value};
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => vec![
                json!(0),
                json!(-1),
                json!(i + 1),
                json!(i * 3 + 7),
                json!(4_000_000_000i64),
            ],
            None => {
                let x = n.as_f64().unwrap_or(1.0);
                vec![json!(0.0), json!(-1.0), json!(x * 10.0 + 1.0), json!(1e300)]
            }
        },
        Value::String(s) => vec![json!(""), json!(format!("{s}x")), json!(7)],
        Value::Bool(b) => vec![json!(!b)],
        Value::Null => vec![json!(0), json!("x")],
        _ => vec![json!(null), json!([0]), json!("x")],
    }
}

/// Every single-field edit of a JSON file: (what, new bytes).
fn json_edits(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let mut at = Vec::new();
    leaves(&v, String::new(), &mut at);
    let mut out = Vec::new();
    for p in at {
        for new in replacements(v.pointer(&p).unwrap()) {
            let mut w = v.clone();
            *w.pointer_mut(&p).unwrap() = new.clone();
            out.push((
                format!("{p} = {new}"),
                serde_json::to_vec_pretty(&w).unwrap(),
            ));
        }
    }
    out
}

/// Edits of a `.npy` header one entry at a time: another dtype, Fortran order, each dimension
/// one more, one less and 0, a dimension more.
fn npy_edits(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + header_len].to_vec()).unwrap();
    let descr = header.split('\'').nth(3).unwrap().to_string();
    let shape = header[header.find('(').unwrap() + 1..header.find(')').unwrap()].to_string();
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let mut variants: Vec<(String, String)> = ["<f4", "<f8", "|u1", "<i2", "<u4", ">f4"]
        .iter()
        .filter(|d| **d != descr)
        .map(|d| (format!("descr {d}"), header.replacen(&descr, d, 1)))
        .collect();
    variants.push(("Fortran order".into(), header.replacen("False", "True ", 1)));
    let render = |d: &[usize]| {
        let s: Vec<String> = d.iter().map(|x| x.to_string()).collect();
        if s.len() == 1 {
            format!("({},)", s[0])
        } else {
            format!("({})", s.join(", "))
        }
    };
    for k in 0..dims.len() {
        for new in [dims[k] + 1, dims[k].saturating_sub(1), 0] {
            let mut d = dims.clone();
            d[k] = new;
            variants.push((
                format!("dim {k} = {new}"),
                header.replacen(&format!("({shape})"), &render(&d), 1),
            ));
        }
    }
    let mut more = dims.clone();
    more.push(1);
    variants.push((
        "one dimension more".into(),
        header.replacen(&format!("({shape})"), &render(&more), 1),
    ));
    variants
        .into_iter()
        .map(|(what, h)| {
            // Keep the header's length (pad or cut its trailing spaces) so the data stays put.
            let mut h = h.trim_end().to_string();
            while h.len() + 1 < header_len {
                h.push(' ');
            }
            h.push('\n');
            let mut b = bytes[..8].to_vec();
            b.extend_from_slice(&(h.len() as u16).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            b.extend_from_slice(&bytes[10 + header_len..]);
            (what, b)
        })
        .collect()
}

/// The systematic edits of a target's sweep files: (file, what, new bytes).
fn sweep_edits(target: &Target) -> Vec<(PathBuf, String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in &target.sweep {
        let bytes = std::fs::read(target.input.join(f)).unwrap();
        let edits = if f.extension().is_some_and(|e| e == "json") {
            json_edits(&bytes)
        } else {
            npy_edits(&bytes)
        };
        out.extend(edits.into_iter().map(|(w, b)| (f.clone(), w, b)));
    }
    out
}

#[test]
fn damaged_inputs_end_in_a_typed_error_or_a_valid_result() {
    let t0 = Instant::now();
    let inp = setup();
    let root = inp.root.clone();
    let panel_files = files(&inp.panel);
    let (panel, checkpoint, factor_csv, industry) = (
        inp.panel.clone(),
        inp.checkpoint.clone(),
        inp.factor_csv.clone(),
        inp.industry.clone(),
    );
    let dates = Panel::open(&panel).unwrap().meta().dates.clone();
    let (d40, d160) = (dates[40].clone(), dates[160].clone());
    let panel2 = panel.clone();
    let panel3 = panel.clone();
    let panel4 = panel.clone();
    let (d40b, d160b) = (d40.clone(), d160.clone());
    let targets: Vec<Target> = vec![
        Target {
            name: "panel/panel-info",
            input: inp.panel.clone(),
            files: panel_files.clone(),
            cases: 50,
            sweep: panel_files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "npy"))
                .cloned()
                .collect(),
            kind: Produces::Nothing,
            command: Box::new(|p, _| {
                let mut c = alphanet();
                c.arg("panel-info").arg(p);
                c
            }),
        },
        Target {
            name: "panel/predict",
            input: inp.panel.clone(),
            files: panel_files.clone(),
            cases: 40,
            sweep: vec![PathBuf::from("meta.json")],
            kind: Produces::Factor,
            command: Box::new(move |p, out| {
                let mut c = alphanet();
                c.args(["predict", "--checkpoint"])
                    .arg(&checkpoint)
                    .arg("--panel")
                    .arg(p)
                    .args(["--from", &d40, "--to", &d160])
                    .arg("--out")
                    .arg(out);
                c
            }),
        },
        Target {
            name: "panel/eval",
            input: inp.panel.clone(),
            files: panel_files.clone(),
            cases: 30,
            sweep: vec![],
            kind: Produces::Report,
            command: Box::new(move |p, out| {
                let mut c = alphanet();
                c.arg("eval")
                    .arg("--panel")
                    .arg(p)
                    .arg("--factor")
                    .arg(format!("f={}", factor_csv.display()))
                    .arg("--out")
                    .arg(out);
                c
            }),
        },
        Target {
            name: "panel/enhance",
            input: inp.panel.clone(),
            files: panel_files.clone(),
            cases: 15,
            sweep: vec![],
            kind: Produces::Report,
            command: Box::new(|p, out| {
                let mut c = alphanet();
                c.arg("enhance")
                    .arg("--panel")
                    .arg(p)
                    .arg("--factor")
                    .arg(format!("f={}", p.join("oracle.npy").display()))
                    .arg("--out")
                    .arg(out);
                c
            }),
        },
        Target {
            name: "panel/train",
            input: inp.panel.clone(),
            files: panel_files,
            cases: 12,
            sweep: vec![],
            kind: Produces::Checkpoint,
            command: Box::new(|p, out| {
                let mut c = alphanet();
                c.args(["train", "--panel"])
                    .arg(p)
                    .arg("--out")
                    .arg(out)
                    .args(["--epochs", "1", "--hidden", "3", "--threads", "1"]);
                c
            }),
        },
        Target {
            name: "checkpoint/predict",
            input: inp.checkpoint.clone(),
            files: files(&inp.checkpoint),
            cases: 40,
            sweep: vec![PathBuf::from("config.json")],
            kind: Produces::Factor,
            command: Box::new(move |ck, out| {
                let mut c = alphanet();
                c.args(["predict", "--checkpoint"])
                    .arg(ck)
                    .arg("--panel")
                    .arg(&panel2)
                    .args(["--from", &d40b, "--to", &d160b])
                    .arg("--out")
                    .arg(out);
                c
            }),
        },
        Target {
            name: "factor-csv/eval",
            input: inp.factor_csv.parent().unwrap().join("factor-only"),
            files: vec![PathBuf::from("factor.csv")],
            cases: 30,
            sweep: vec![],
            kind: Produces::Report,
            command: Box::new(move |d, out| {
                let mut c = alphanet();
                c.arg("eval")
                    .arg("--panel")
                    .arg(&panel3)
                    .arg("--factor")
                    .arg(format!("f={}", d.join("factor.csv").display()))
                    .arg("--out")
                    .arg(out);
                c
            }),
        },
        Target {
            name: "baostock/import",
            input: inp.baostock.clone(),
            files: files(&inp.baostock),
            cases: 30,
            sweep: vec![],
            kind: Produces::Panel,
            command: Box::new(move |d, out| {
                let mut c = alphanet();
                c.args(["import", "baostock", "--src"])
                    .arg(d)
                    .arg("--out")
                    .arg(out)
                    .arg("--industry")
                    .arg(&industry);
                c
            }),
        },
        Target {
            name: "industry/import",
            input: inp.industry.parent().unwrap().join("industry-only"),
            files: vec![PathBuf::from("industry.csv")],
            cases: 15,
            sweep: vec![],
            kind: Produces::Panel,
            command: Box::new(move |d, out| {
                let mut c = alphanet();
                c.args(["import", "baostock", "--src"])
                    .arg(root.join("baostock"))
                    .arg("--out")
                    .arg(out)
                    .arg("--industry")
                    .arg(d.join("industry.csv"));
                c
            }),
        },
        Target {
            name: "qlib/import",
            input: inp.qlib.clone(),
            files: files(&inp.qlib),
            cases: 30,
            sweep: vec![],
            kind: Produces::Panel,
            command: Box::new(|d, out| {
                let mut c = alphanet();
                c.args(["import", "qlib", "--src"])
                    .arg(d)
                    .arg("--out")
                    .arg(out);
                c
            }),
        },
        Target {
            name: "run/merge",
            input: inp.run.clone(),
            files: files(&inp.run)
                .into_iter()
                .filter(|f| !f.starts_with("jobs") || !f.to_string_lossy().contains("checkpoint"))
                .collect(),
            cases: 30,
            sweep: vec![
                PathBuf::from("run.json"),
                PathBuf::from("jobs/v2-w000-s00/job.json"),
                PathBuf::from("jobs/v2-w000-s00/prediction.npy"),
            ],
            kind: Produces::Merged,
            command: Box::new(move |r, _| {
                let mut c = alphanet();
                c.arg("merge").arg(r).arg("--panel").arg(&panel4);
                c
            }),
        },
    ];
    // Single-file inputs get a folder of their own, so that one copy holds one damaged file.
    for (file, dir) in [
        (&inp.factor_csv, "factor-only"),
        (&inp.industry, "industry-only"),
    ] {
        let d = inp.root.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(file, d.join(file.file_name().unwrap())).unwrap();
    }

    let work = inp.root.join("cases");
    std::fs::create_dir_all(&work).unwrap();
    // `FUZZ_SCALE=k` runs k times the cases and `FUZZ_SEED=s` other ones (for exploring; the
    // test itself runs the fixed set).
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (scale, base) = (env("FUZZ_SCALE", 1) as usize, env("FUZZ_SEED", 0));
    let edits: Vec<_> = targets.iter().map(sweep_edits).collect();
    // (target, random case k) and (target, systematic edit e).
    let jobs: Vec<(usize, Result<usize, usize>)> = targets
        .iter()
        .enumerate()
        .flat_map(|(t, target)| (0..target.cases * scale).map(move |k| (t, Ok(k))))
        .chain(
            edits
                .iter()
                .enumerate()
                .flat_map(|(t, e)| (0..e.len()).map(move |k| (t, Err(k)))),
        )
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let successes = std::sync::Mutex::new(vec![0usize; targets.len()]);
    let edited: Vec<usize> = edits.iter().map(Vec::len).collect();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(t, case)) = jobs.get(j) else { break };
                let target = &targets[t];
                let case_dir = work.join(format!("{}-{j}", target.name.replace('/', "-")));
                let input = case_dir.join("in");
                copy_dir(&target.input, &input);
                let (k, damaged, how) = match case {
                    Ok(k) => {
                        let mut rng = stream(base + 100_000 * t as u64 + k as u64, "fuzz");
                        let damaged = target.files[rng.gen_range(0..target.files.len())].clone();
                        let how = corrupt(&input.join(&damaged), &mut rng);
                        (format!("case {k}"), damaged, how)
                    }
                    Err(e) => {
                        let (file, what, bytes) = &edits[t][e];
                        std::fs::write(input.join(file), bytes).unwrap();
                        (format!("edit {e}"), file.clone(), what.clone())
                    }
                };
                let out = match target.kind {
                    Produces::Merged => input.clone(),
                    _ => case_dir.join("out"),
                };
                let case = format!("{} {k}: {} {how}", target.name, damaged.display());
                let succeeded = check(&case, (target.command)(&input, &out), target.kind, &out);
                if succeeded {
                    successes.lock().unwrap()[t] += 1;
                }
                let _ = std::fs::remove_dir_all(&case_dir);
            });
        }
    });
    let successes = successes.into_inner().unwrap();
    for (t, (target, ok)) in targets.iter().zip(&successes).enumerate() {
        eprintln!(
            "{}: {ok} of {} damaged inputs still gave a valid result",
            target.name,
            target.cases * scale + edited[t]
        );
    }
    eprintln!(
        "{} cases in {:.1} s",
        jobs.len(),
        t0.elapsed().as_secs_f64()
    );
}
