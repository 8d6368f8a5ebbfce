use alphanet::app::args::{init_threads, parse_ratio, ModelArgs, TrainArgs};
use alphanet::app::{bench, commands, demo, gradcheck};
use alphanet::data::synth::SynthConfig;
use alphanet::model::Arch;
use alphanet::{Error, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// AlphaNet (Huatai 2021) training and evaluation engine.
#[derive(Parser)]
#[command(name = "alphanet", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the default synthetic market, train v2, report held-out RankIC against the oracle.
    Demo {
        /// Output folder (default: out/demo-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = SynthConfig::default().stocks)]
        stocks: usize,
        #[arg(long, default_value_t = SynthConfig::default().days)]
        days: usize,
        #[arg(long, default_value_t = SynthConfig::default().seed)]
        synth_seed: u64,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        train: TrainArgs,
    },
    /// Write a synthetic panel with a planted, learnable alpha.
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = SynthConfig::default().stocks)]
        stocks: usize,
        #[arg(long, default_value_t = SynthConfig::default().days)]
        days: usize,
        #[arg(long, default_value_t = SynthConfig::default().seed)]
        seed: u64,
    },
    /// Train one model on a panel's in-sample dates and save a checkpoint.
    Train {
        #[arg(long)]
        panel: PathBuf,
        /// Checkpoint folder to create.
        #[arg(long)]
        out: PathBuf,
        /// First in-sample date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Last in-sample date.
        #[arg(long)]
        to: Option<String>,
        /// Use every k-th date of the in-sample window.
        #[arg(long, default_value_t = 1)]
        sample_every: usize,
        /// Chronological train:validation split.
        #[arg(long, default_value = "4:1")]
        split: String,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        train: TrainArgs,
    },
    /// Predict the factor of a checkpoint over a date range; writes factor.npy and factor.csv.
    Predict {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        panel: PathBuf,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Output folder to create.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Gradient checks of every op and every model × loss against f64 central differences.
    Gradcheck {
        /// Only this architecture's whole-model checks (ops are always checked).
        #[arg(long, value_enum)]
        model: Option<Arch>,
    },
    /// Training and inference throughput (samples/s) per model and batch size.
    Bench {
        /// Variant(s), as for --variant: v2, v2.1, v2.2, v2.3, v1, v3 (comma list combines).
        #[arg(long, default_value = "v2")]
        model: String,
        /// Batch sizes, comma separated.
        #[arg(long, default_value = "1000,4096,16384")]
        batch: String,
        /// Feature ops as for training, or `all`, or `peer6` (the TensorFlow peer's six).
        #[arg(long, default_value = "all")]
        ops: String,
        /// cpu, auto or cuda[:K].
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Timed steps per figure (the median is reported).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Untimed steps before timing.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// v2.1 pair coverage by simulation and analytically (the report's Table 5).
    Coverage {
        #[arg(long, default_value_t = 15)]
        features: usize,
        #[arg(long, default_value_t = 10)]
        models: usize,
        /// Range of n, e.g. 6..11 (inclusive).
        #[arg(long, default_value = "6..11")]
        n: String,
        #[arg(long, default_value_t = 1000)]
        trials: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn parse_n_range(s: &str) -> Result<std::ops::RangeInclusive<usize>> {
    let bad = || {
        Error::Config(format!(
            "--n {s}: expected a range like 6..11 or a single number"
        ))
    };
    match s.split_once("..") {
        Some((a, b)) => Ok(a.trim().parse().map_err(|_| bad())?
            ..=b.trim_start_matches('=')
                .trim()
                .parse()
                .map_err(|_| bad())?),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            Ok(n..=n)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Demo {
            out,
            stocks,
            days,
            synth_seed,
            model,
            train,
        } => {
            init_threads(train.threads)?;
            let (model, loss) = model.configs(train.seed)?;
            let opts = demo::DemoOptions {
                out: out.unwrap_or_else(demo::default_out),
                synth: SynthConfig {
                    stocks,
                    days,
                    seed: synth_seed,
                },
                test_share: 0.2,
                model,
                loss,
                train: train.config()?,
            };
            demo::run(&opts)?;
        }
        Cmd::Synth {
            out,
            stocks,
            days,
            seed,
        } => commands::synth(&SynthConfig { stocks, days, seed }, &out)?,
        Cmd::Train {
            panel,
            out,
            from,
            to,
            sample_every,
            split,
            model,
            train,
        } => {
            init_threads(train.threads)?;
            let (m, l) = model.configs(train.seed)?;
            let ratio = parse_ratio(&split)?;
            commands::train(
                &panel,
                &out,
                &m,
                &l,
                &train.config()?,
                (from.as_deref(), to.as_deref()),
                sample_every,
                ratio,
            )?;
        }
        Cmd::Predict {
            checkpoint,
            panel,
            from,
            to,
            out,
            threads,
        } => {
            init_threads(threads)?;
            commands::predict(&checkpoint, &panel, &from, &to, &out)?;
        }
        Cmd::Gradcheck { model } => {
            let rows = gradcheck::all_checks(model);
            print!("{}", gradcheck::render(&rows));
            if rows.iter().any(|r| !r.pass) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Bench {
            model,
            batch,
            ops,
            device,
            steps,
            warmup,
            seed,
            threads,
            json,
        } => {
            init_threads(threads)?;
            let report = bench::run(&bench::BenchOptions {
                model,
                ops,
                batches: bench::parse_batches(&batch)?,
                device: device.parse()?,
                steps,
                warmup,
                seed,
            })?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|e| Error::Config(format!("bench: {e}")))?
                );
            } else {
                print!("{}", bench::render(&report));
            }
        }
        Cmd::Coverage {
            features,
            models,
            n,
            trials,
            seed,
        } => {
            println!("{:>3}  {:>10}  {:>10}", "n", "simulated", "analytic");
            for c in commands::coverage_table(features, models, parse_n_range(&n)?, trials, seed)? {
                println!(
                    "{:>3}  {:>9.2}%  {:>9.2}%",
                    c.n,
                    100.0 * c.simulated,
                    100.0 * c.analytic
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    alphanet::train::step::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
