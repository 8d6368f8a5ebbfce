//! `import qlib` and `import baostock`: run an importer with a progress bar and report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::data::builder::ImportSummary;
use crate::data::import_baostock::{import_baostock, BaostockOptions};
use crate::data::import_qlib::{import_qlib, QlibOptions};
use crate::Result;

/// The arguments of `alphanet import`: which source, and its own.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportCommand {
    #[command(subcommand)]
    pub source: ImportSource,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImportSource {
    /// A qlib `dump_bin` directory (calendars/, instruments/, features/<code>/<field>.day.bin).
    Qlib {
        #[arg(long)]
        src: PathBuf,
        /// Panel directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Codes and point-in-time universe: all, csi300 (instruments/<name>.txt) or a file.
        #[arg(long, default_value = "all")]
        instruments: String,
        /// First date (YYYY-MM-DD).
        #[arg(long)]
        start: Option<String>,
        /// Last date.
        #[arg(long)]
        end: Option<String>,
        /// Industry snapshot CSV (updateDate,code,code_name,industry,...).
        #[arg(long)]
        industry: Option<PathBuf>,
        /// A benchmark rebuilt from the data: csi500-proxy (with --instruments all; needs
        /// instruments/csi300.txt, checked against the SH000905 index when the dump has it).
        #[arg(long)]
        benchmark: Option<String>,
    },
    /// A directory of baostock daily CSVs, one per stock (sh.600000.csv).
    Baostock {
        #[arg(long)]
        src: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        industry: Option<PathBuf>,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
    },
}

impl ImportCommand {
    pub fn run(self) -> Result<()> {
        match self.source {
            ImportSource::Qlib {
                src,
                out,
                instruments,
                start,
                end,
                industry,
                benchmark,
            } => qlib(&QlibOptions {
                src,
                out,
                instruments,
                start,
                end,
                industry,
                benchmark,
            }),
            ImportSource::Baostock {
                src,
                out,
                industry,
                start,
                end,
            } => baostock(&BaostockOptions {
                src,
                out,
                industry,
                start,
                end,
            }),
        }
    }
}

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
    for w in s.audit.warnings() {
        eprintln!("warning: {w}");
    }
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
