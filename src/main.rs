use alphanet::app::bench::BenchCommand;
use alphanet::app::coverage::CoverageCommand;
use alphanet::app::demo::DemoCommand;
use alphanet::app::enhance::EnhanceCommand;
use alphanet::app::eval::EvalCommand;
use alphanet::app::gradcheck::GradcheckCommand;
use alphanet::app::import::ImportCommand;
use alphanet::app::merge::MergeCommand;
use alphanet::app::panel_info::PanelInfoCommand;
use alphanet::app::predict::PredictCommand;
use alphanet::app::run::RunCommand;
use alphanet::app::synth::SynthCommand;
use alphanet::app::train::TrainCommand;
use alphanet::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// AlphaNet (Huatai 2021) training and evaluation engine.
#[derive(Parser)]
#[command(name = "alphanet", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

// The commands; each one's arguments, and what they turn into, live in `alphanet::app::<command>`.
#[derive(Subcommand)]
enum Cmd {
    /// Build the default synthetic market, train v2, report held-out RankIC against the oracle.
    Demo(DemoCommand),
    /// Write a synthetic panel with a planted, learnable alpha.
    Synth(SynthCommand),
    /// Train one model on a panel's in-sample dates and save a checkpoint.
    Train(TrainCommand),
    /// Predict the factor of a checkpoint over a date range; writes factor.npy and factor.csv.
    Predict(PredictCommand),
    /// Neutralized RankIC and 5-group layered backtest of factors; writes report.md,
    /// metrics.json and PNG charts.
    Eval(EvalCommand),
    /// Weekly index-enhancement backtest of a factor against a benchmark of the panel.
    Enhance(EnhanceCommand),
    /// Import real market data into a panel.
    Import(ImportCommand),
    /// Dates, stocks, samples per date after the universe filters, missing values, styles,
    /// proxies.
    PanelInfo(PanelInfoCommand),
    /// The rolling protocol: retrain every period on the preceding in-sample window, a seed
    /// ensemble per window, one factor per variant over the whole test span (docs/protocol.md).
    Run(RunCommand),
    /// Assemble the ensemble factors and the manifest of a run whose shards ran separately.
    Merge(MergeCommand),
    /// Gradient checks of every op and every model × loss against f64 central differences.
    Gradcheck(GradcheckCommand),
    /// Training and inference throughput (samples/s) per model and batch size.
    Bench(BenchCommand),
    /// v2.1 pair coverage by simulation and analytically (the report's Table 5).
    Coverage(CoverageCommand),
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Demo(c) => c.run()?,
        Cmd::Synth(c) => c.run()?,
        Cmd::Train(c) => c.run()?,
        Cmd::Predict(c) => c.run()?,
        Cmd::Eval(c) => c.run()?,
        Cmd::Enhance(c) => c.run()?,
        Cmd::Import(c) => c.run()?,
        Cmd::PanelInfo(c) => c.run()?,
        Cmd::Run(c) => c.run()?,
        Cmd::Merge(c) => c.run()?,
        Cmd::Gradcheck(c) => return Ok(c.run()),
        Cmd::Bench(c) => c.run()?,
        Cmd::Coverage(c) => c.run()?,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    alphanet::util::system::keep_freed_memory();
    alphanet::app::default_sigpipe();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
