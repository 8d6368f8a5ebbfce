//! `alphanet demo`: the first thing a new user runs. Builds the default synthetic market, trains
//! v2 on its early part, predicts the held-out tail and compares the held-out RankIC with the
//! oracle's (the planted signal itself), writing everything into one output folder.

use super::args::{init_threads, FitArgs};
use super::eval::{neutralization_industries, neutralization_view};
use super::held_out::held_out;
use crate::cuda::{Backend, DeviceChoice};
use crate::data::panel::Panel;
use crate::data::samples::HORIZON;
use crate::data::synth::{write_synth, SynthConfig};
use crate::eval::chart::{line_chart, Line};
use crate::eval::layered::{evaluate, LayerConfig};
use crate::model::config::display_name;
use crate::model::{LossConfig, ModelConfig};
use crate::train::checkpoint;
use crate::train::fit::fit;
use crate::train::predict::write_factor;
use crate::train::predict::Output;
use crate::train::split::insample_end;
use crate::train::trainer::{fmt_ic, TrainConfig};
use crate::util::fs::{write_file_atomically, write_json_atomically};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The arguments of `alphanet demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoCommand {
    /// Output folder (default: out/demo-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = SynthConfig::default().stocks)]
    pub stocks: usize,
    #[arg(long, default_value_t = SynthConfig::default().days)]
    pub days: usize,
    #[arg(long, default_value_t = SynthConfig::default().seed)]
    pub synth_seed: u64,
    #[command(flatten)]
    pub fit: FitArgs,
}

impl DemoCommand {
    pub fn options(self) -> Result<DemoOptions> {
        let (model, loss) = self.fit.model.configs(self.fit.train.seed)?;
        Ok(DemoOptions {
            out: self.out.unwrap_or_else(default_out),
            synth: SynthConfig {
                stocks: self.stocks,
                days: self.days,
                seed: self.synth_seed,
            },
            test_share: 0.2,
            model,
            loss,
            train: self.fit.train.config()?,
            device: self.fit.device.choice()?,
        })
    }

    pub fn run(self) -> Result<()> {
        init_threads(self.fit.train.threads)?;
        run(&self.options()?)?;
        Ok(())
    }
}

pub struct DemoOptions {
    pub out: PathBuf,
    pub synth: SynthConfig,
    /// Share of the panel's dates held out at the end.
    pub test_share: f64,
    pub model: ModelConfig,
    pub loss: LossConfig,
    pub train: TrainConfig,
    pub device: DeviceChoice,
}

pub struct DemoResult {
    /// The raw factor's RankIC on every held-out date.
    pub ic_mean: f64,
    pub ic_ir: f64,
    pub oracle_mean: f64,
    pub oracle_ir: f64,
    /// As `alphanet eval` reports it: industry + size neutralized, every 10th signal date.
    pub neutral_ic_mean: f64,
    pub neutral_ic_ir: f64,
}

/// How the second RankIC figure differs from the first (docs/evaluation.md#rankic).
const NEUTRAL_NOTE: &str =
    "as `alphanet eval` scores it (industry + size neutralized, every 10th date)";

pub fn run(opts: &DemoOptions) -> Result<DemoResult> {
    let t0 = Instant::now();
    crate::util::fs::check_output_creatable(&opts.out)?;
    let backend = Backend::open(opts.device)?;
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let panel_dir = opts.out.join("panel");
    eprintln!(
        "[1/4] synthetic market: {} stocks × {} days (seed {}) → {}",
        opts.synth.stocks,
        opts.synth.days,
        opts.synth.seed,
        panel_dir.display()
    );
    write_synth(&opts.synth, &panel_dir)?;
    let panel = Panel::open(&panel_dir)?;
    let t = panel.n_dates();
    let test_len = ((t as f64) * opts.test_share) as usize;
    let first_test = t - HORIZON - test_len;
    let test = first_test..t - HORIZON;
    let insample = 29..insample_end(first_test);
    let dates = &panel.meta().dates;
    eprintln!(
        "[2/4] training {} on {} .. {} (purged 4:1 split)",
        display_name(&opts.model, &opts.loss),
        dates[insample.start],
        dates[insample.end - 1]
    );
    let fitted = fit(
        &backend,
        &panel,
        &opts.model,
        &opts.loss,
        &opts.train,
        insample,
        1,
        (4, 1),
        true,
    )?;
    eprintln!(
        "      best epoch {} of {} by validation {}: loss {:.4}, RankIC {}",
        fitted.report.best_epoch,
        fitted.report.epochs.len(),
        fitted.report.select_by.name(),
        fitted.report.best_val_loss,
        fmt_ic(fitted.report.best_val_rank_ic)
    );
    eprintln!(
        "[3/4] predicting held-out {} .. {}",
        dates[test.start],
        dates[test.end - 1]
    );
    let ho = held_out(
        &backend,
        &panel,
        &fitted.model,
        test.clone(),
        1,
        opts.train.batch_size.max(1000),
        Output::of(&opts.loss),
    )?;
    let (oracle, oracle_series) = ho
        .oracle
        .clone()
        .ok_or_else(|| Error::Data("the synthetic panel has no oracle.npy".into()))?;
    eprintln!("[4/4] writing report into {}", opts.out.display());
    checkpoint::save(
        &opts.out.join("checkpoint"),
        &fitted.model,
        &opts.loss,
        &panel.meta().feature_names,
        Some(&fitted.report),
    )?;
    write_factor(&opts.out, &panel, &ho.factor, test.clone())?;
    cumulative_ic_chart(
        &opts.out.join("ic_cumulative.png"),
        dates,
        &ho.series,
        &oracle_series,
    )?;
    // The same factor as `alphanet eval` scores it: neutralized, every 10th signal date.
    let (one_industry, _) = neutralization_industries(&panel);
    let view = neutralization_view(&panel, &one_industry);
    let neutral = evaluate(view, &ho.factor, &LayerConfig::default())?.ic;
    let result = DemoResult {
        ic_mean: ho.ic.mean,
        ic_ir: ho.ic.ir,
        oracle_mean: oracle.mean,
        oracle_ir: oracle.ir,
        neutral_ic_mean: neutral.mean,
        neutral_ic_ir: neutral.ir,
    };
    let elapsed = t0.elapsed().as_secs_f64();
    let metrics = serde_json::json!({
        "model": opts.model, "loss": opts.loss, "train": opts.train, "synth": {
            "stocks": opts.synth.stocks, "days": opts.synth.days, "seed": opts.synth.seed },
        "held_out": { "from": dates[test.start], "to": dates[test.end - 1], "rank_ic": ho.ic, "oracle_rank_ic": oracle,
            "neutralized_rank_ic_every_10_days": neutral },
        "training": fitted.report, "elapsed_s": elapsed,
    });
    write_json_atomically(&opts.out.join("metrics.json"), &metrics)?;
    let report = render_report(
        opts,
        &fitted.report,
        &ho.ic,
        &oracle,
        &neutral,
        (&dates[test.start], &dates[test.end - 1]),
        elapsed,
    );
    write_file_atomically(&opts.out.join("report.md"), report.as_bytes())?;
    println!("{}", summary_line(&result));
    println!(
        "{NEUTRAL_NOTE}: RankIC mean {:.4} (IC_IR {:.2}); the line above scores the raw factor on every held-out date",
        result.neutral_ic_mean, result.neutral_ic_ir
    );
    println!("report: {}", opts.out.join("report.md").display());
    Ok(result)
}

/// Cumulative daily RankIC of the model and of the oracle over the held-out dates.
fn cumulative_ic_chart(
    path: &Path,
    dates: &[String],
    model: &[(usize, f64)],
    oracle: &[(usize, f64)],
) -> Result<()> {
    let cumulative = |s: &[(usize, f64)]| {
        s.iter()
            .scan(0.0, |acc, &(_, ic)| {
                *acc += ic;
                Some(*acc)
            })
            .collect::<Vec<f64>>()
    };
    let labels: Vec<String> = model.iter().map(|&(t, _)| dates[t].clone()).collect();
    line_chart(
        path,
        "held-out cumulative RankIC: model vs the planted signal",
        "cumulative RankIC",
        &labels,
        &[
            Line {
                name: "model".into(),
                values: cumulative(model),
            },
            Line {
                name: "oracle (planted signal)".into(),
                values: cumulative(oracle),
            },
        ],
        Some(0.0),
    )
}

fn summary_line(r: &DemoResult) -> String {
    format!(
        "held-out RankIC mean {:.4} (IC_IR {:.2})   oracle RankIC mean {:.4} (IC_IR {:.2})   model/oracle {:.0}%",
        r.ic_mean,
        r.ic_ir,
        r.oracle_mean,
        r.oracle_ir,
        100.0 * r.ic_mean / r.oracle_mean
    )
}

fn render_report(
    opts: &DemoOptions,
    report: &crate::train::trainer::TrainReport,
    ic: &crate::eval::ic::IcSummary,
    oracle: &crate::eval::ic::IcSummary,
    neutral: &crate::eval::ic::IcSummary,
    span: (&str, &str),
    elapsed: f64,
) -> String {
    let mut s = String::from("# alphanet demo\n\n");
    s += &format!(
        "Synthetic market: {} stocks × {} days, seed {}. Model {}.\n\n",
        opts.synth.stocks,
        opts.synth.days,
        opts.synth.seed,
        display_name(&opts.model, &opts.loss)
    );
    s += &format!(
        "Held-out dates {} .. {}, RankIC on every date against the raw 10-day VWAP return.\n\n",
        span.0, span.1
    );
    s +=
        "| factor | RankIC mean | RankIC std | IC_IR | IC>0 | dates |\n|---|---|---|---|---|---|\n";
    for (name, v) in [("model", ic), ("oracle (planted signal)", oracle)] {
        s += &format!(
            "| {name} | {:.2}% | {:.2}% | {:.2} | {:.1}% | {} |\n",
            100.0 * v.mean,
            100.0 * v.std,
            v.ir,
            100.0 * v.positive,
            v.dates
        );
    }
    s += &format!(
        "\n{NEUTRAL_NOTE}: RankIC mean {:.2}%, IC_IR {:.2} over {} dates.\n",
        100.0 * neutral.mean,
        neutral.ir,
        neutral.dates
    );
    s += &format!(
        "\nTraining: {} samples, {} validation samples, {} epochs run, best epoch {} by validation {} (validation loss {:.4}, RankIC {}). Total time {elapsed:.1} s.\n\n",
        report.train_samples,
        report.val_samples,
        report.epochs.len(),
        report.best_epoch,
        report.select_by.name(),
        report.best_val_loss,
        fmt_ic(report.best_val_rank_ic)
    );
    s += "| epoch | train loss | val loss | val RankIC | samples/s |\n|---|---|---|---|---|\n";
    for e in &report.epochs {
        s += &format!(
            "| {} | {:.4} | {:.4} | {} | {:.0} |\n",
            e.epoch,
            e.train_loss,
            e.val_loss,
            fmt_ic(e.val_rank_ic),
            e.samples_per_s
        );
    }
    s += "\n![cumulative RankIC](ic_cumulative.png)\n";
    s += "\nFiles: `panel/` (the synthetic panel), `checkpoint/`, `factor.npy` / `factor.csv` (held-out factor), `metrics.json`.\n";
    s
}

/// A fresh default output folder `out/demo-YYYY-MM-DD-HHMMSS` (UTC), so reruns never collide.
pub fn default_out() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Path::new("out").join(format!("demo-{}", utc_stamp(secs)))
}

/// `YYYY-MM-DD-HHMMSS` of a Unix time (UTC).
pub fn utc_stamp(secs: u64) -> String {
    let rem = secs % 86_400;
    format!(
        "{}-{:02}{:02}{:02}",
        crate::data::calendar::format_date((secs / 86_400) as i64),
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
