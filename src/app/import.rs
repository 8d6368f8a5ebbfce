//! `import qlib` and `import baostock`: run an importer with a progress bar and report.

use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::data::builder::ImportSummary;
use crate::data::import_baostock::{import_baostock, BaostockOptions};
use crate::data::import_qlib::{import_qlib, QlibOptions};
use crate::Result;

pub fn qlib(o: &QlibOptions) -> Result<()> {
    run("qlib", &o.out, |pb| import_qlib(o, pb))
}

pub fn baostock(o: &BaostockOptions) -> Result<()> {
    run("baostock", &o.out, |pb| import_baostock(o, pb))
}

fn run(
    source: &str,
    out: &Path,
    import: impl FnOnce(&ProgressBar) -> Result<ImportSummary>,
) -> Result<()> {
    let pb = ProgressBar::new(0).with_prefix(format!("import {source}"));
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} stocks ({elapsed})")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    let t0 = Instant::now();
    let summary = import(&pb);
    pb.finish_and_clear();
    let s = summary?;
    println!(
        "wrote {}: {} dates x {} stocks in {:.1}s",
        out.display(),
        s.n_dates,
        s.n_stocks,
        t0.elapsed().as_secs_f64()
    );
    if !s.skipped.is_empty() {
        println!(
            "left out {} listed codes the source has no data for (recorded in meta.json): {}",
            s.skipped.len(),
            s.skipped.join(" ")
        );
    }
    if s.missing_rows > 0 {
        println!(
            "{} stock-days inside a stock's range have no row in the source (left unlisted)",
            s.missing_rows
        );
    }
    Ok(())
}
