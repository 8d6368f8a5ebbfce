use alphanet::app::args::{init_threads, parse_ratio, ModelArgs, TrainArgs};
use alphanet::app::run::{RunOptions, RunSpec};
use alphanet::app::{
    bench, commands, demo, enhance, eval, gradcheck, import, merge, panel_info, run as rolling_run,
};
use alphanet::cuda::DeviceChoice;
use alphanet::data::import_baostock::BaostockOptions;
use alphanet::data::import_qlib::QlibOptions;
use alphanet::data::synth::SynthConfig;
use alphanet::eval::baselines::Baseline;
use alphanet::eval::enhance::EnhanceConfig;
use alphanet::eval::factor::FactorSpec;
use alphanet::eval::layered::LayerConfig;
use alphanet::model::{Arch, InputNorm};
use alphanet::rolling::jobs::Shard;
use alphanet::rolling::schedule::{Period, ScheduleConfig};
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
        /// auto (the first GPU if one is usable, else the CPU), cpu, or cuda:K.
        #[arg(long, default_value = "auto")]
        device: String,
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
        /// auto (the first GPU if one is usable, else the CPU), cpu, or cuda:K.
        #[arg(long, default_value = "auto")]
        device: String,
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
        /// Also print the factor's daily RankIC against the labels (training universe).
        #[arg(long)]
        eval: bool,
        /// auto (the first GPU if one is usable, else the CPU), cpu, or cuda:K.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Neutralized RankIC and 5-group layered backtest of factors; writes report.md,
    /// metrics.json and PNG charts.
    Eval {
        #[arg(long)]
        panel: PathBuf,
        /// NAME=PATH: a long CSV (date,code,factor) or a .npy [T, N] (NAME=PATH@FIRST_DATE when
        /// it covers fewer dates than the panel). Repeat for several factors.
        #[arg(long = "factor", required = true)]
        factors: Vec<String>,
        /// Report folder to create.
        #[arg(long)]
        out: PathBuf,
        /// Trading days between rebalances / IC dates.
        #[arg(long, default_value_t = LayerConfig::default().every)]
        every: usize,
        #[arg(long, default_value_t = LayerConfig::default().groups)]
        groups: usize,
        /// Cost per side as a fraction of traded value.
        #[arg(long, default_value_t = LayerConfig::default().cost, allow_negative_numbers = true)]
        cost: f64,
        /// Also score the classic one-line factors (reversal5, reversal20, corr_cv10,
        /// turnover20, volatility20; alone: all, or a comma-separated subset) on the first
        /// factor's dates and stocks.
        #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "LIST")]
        baselines: Option<String>,
    },
    /// Weekly index-enhancement backtest of a factor against a benchmark of the panel.
    Enhance {
        #[arg(long)]
        panel: PathBuf,
        /// NAME=PATH as for `eval`.
        #[arg(long)]
        factor: String,
        /// Benchmark name in the panel's meta.json (default: its only one).
        #[arg(long)]
        benchmark: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// Per-stock bound on |w − benchmark weight|.
        #[arg(long, default_value_t = EnhanceConfig::default().max_deviation, allow_negative_numbers = true)]
        max_deviation: f64,
        /// Cap on two-way turnover per rebalance.
        #[arg(long, default_value_t = EnhanceConfig::default().max_turnover, allow_negative_numbers = true)]
        max_turnover: f64,
        #[arg(long, default_value_t = EnhanceConfig::default().cost, allow_negative_numbers = true)]
        cost: f64,
    },
    /// Import real market data into a panel.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Dates, stocks, samples per date after the universe filters, missing values, styles,
    /// proxies.
    PanelInfo { panel: PathBuf },
    /// The rolling protocol: retrain every period on the preceding in-sample window, a seed
    /// ensemble per window, one factor per variant over the whole test span (docs/protocol.md).
    Run {
        #[arg(long)]
        panel: PathBuf,
        /// Run folder: created, or resumed (finished jobs are skipped).
        #[arg(long)]
        out: PathBuf,
        /// Variants, comma separated, one factor each; `+` combines (v2.1+v2.3).
        #[arg(long, default_value = "v2,v2.1,v2.2,v2.3")]
        variants: String,
        /// Models per window and variant (ensemble size).
        #[arg(long, default_value_t = 10)]
        seeds: usize,
        /// First prediction date (the first trading date on or after it).
        #[arg(long)]
        start: String,
        /// Retraining period: months (6M), years (1Y) or trading days (120d).
        #[arg(long, default_value = "6M")]
        retrain_every: String,
        /// Trading days of in-sample history per window (shrunk, with a note, if the panel is shorter).
        #[arg(long, default_value_t = 1500)]
        insample_days: usize,
        /// Use every k-th in-sample date.
        #[arg(long, default_value_t = 2)]
        sample_every: usize,
        /// Chronological train:validation split.
        #[arg(long, default_value = "4:1")]
        split: String,
        /// Run the i-th (0-based) of N slices of the jobs, e.g. $SLURM_ARRAY_TASK_ID/N.
        #[arg(long, default_value = "0/1")]
        shard: String,
        /// auto (the first GPU if one is usable, else the CPU), cpu, or cuda:K.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Feature-layer ops, comma separated.
        #[arg(long, default_value = "corr,cov,stddev,zscore,return,decaylinear,mean")]
        ops: String,
        /// Dropout before the output layer.
        #[arg(long, default_value_t = 0.0)]
        dropout: f64,
        /// Recurrent units.
        #[arg(long, default_value_t = 30)]
        hidden: usize,
        /// Picture scaling before the feature layer: none or picture (docs/models.md).
        #[arg(long, value_enum, default_value_t = InputNorm::None)]
        input_norm: InputNorm,
        /// --seed is the ensemble's base seed.
        #[command(flatten)]
        train: TrainArgs,
    },
    /// Assemble the ensemble factors and the manifest of a run whose shards ran separately.
    Merge {
        /// The run folder.
        run: PathBuf,
        /// The panel, if it moved since the run.
        #[arg(long)]
        panel: Option<PathBuf>,
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
        /// cpu, auto or cuda[:K] (the default measures the CPU, so figures name their device).
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

#[derive(Subcommand)]
enum ImportSource {
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
            device,
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
                device: device.parse()?,
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
            device,
            model,
            train,
        } => {
            init_threads(train.threads)?;
            let (m, l) = model.configs(train.seed)?;
            let ratio = parse_ratio(&split)?;
            commands::train(
                device.parse()?,
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
            eval,
            device,
        } => {
            init_threads(threads)?;
            commands::predict(device.parse()?, &checkpoint, &panel, &from, &to, &out, eval)?;
        }
        Cmd::Eval {
            panel,
            factors,
            out,
            every,
            groups,
            cost,
            baselines,
        } => {
            if every == 0 || groups < 2 || !(0.0..0.5).contains(&cost) {
                return Err(Error::Config(format!(
                    "--every {every} must be ≥ 1, --groups {groups} ≥ 2, --cost {cost} in [0, 0.5)"
                )));
            }
            eval::run(&eval::EvalOptions {
                panel,
                factors: factors
                    .iter()
                    .map(|f| FactorSpec::parse(f))
                    .collect::<Result<_>>()?,
                out,
                layers: LayerConfig {
                    every,
                    groups,
                    cost,
                },
                baselines: match baselines {
                    Some(list) => Baseline::parse_list(&list)?,
                    None => Vec::new(),
                },
            })?;
        }
        Cmd::Enhance {
            panel,
            factor,
            benchmark,
            out,
            max_deviation,
            max_turnover,
            cost,
        } => {
            enhance::run(&enhance::EnhanceOptions {
                panel,
                factor: FactorSpec::parse(&factor)?,
                benchmark,
                out,
                config: EnhanceConfig {
                    max_deviation,
                    max_turnover,
                    cost,
                },
            })?;
        }
        Cmd::Import { source } => match source {
            ImportSource::Qlib {
                src,
                out,
                instruments,
                start,
                end,
                industry,
            } => import::qlib(&QlibOptions {
                src,
                out,
                instruments,
                start,
                end,
                industry,
            })?,
            ImportSource::Baostock {
                src,
                out,
                industry,
                start,
                end,
            } => import::baostock(&BaostockOptions {
                src,
                out,
                industry,
                start,
                end,
            })?,
        },
        Cmd::PanelInfo { panel } => print!("{}", panel_info::panel_info(&panel)?.render()),
        Cmd::Run {
            panel,
            out,
            variants,
            seeds,
            start,
            retrain_every,
            insample_days,
            sample_every,
            split,
            shard,
            device,
            ops,
            dropout,
            hidden,
            input_norm,
            train,
        } => {
            init_threads(train.threads)?;
            let spec = RunSpec {
                variants: variants
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect(),
                seeds,
                schedule: ScheduleConfig {
                    start,
                    every: retrain_every.parse::<Period>()?,
                    insample_days,
                    split: parse_ratio(&split)?,
                },
                sample_every,
                hidden,
                dropout,
                ops,
                input_norm,
                train: train.config()?,
            };
            rolling_run::run(&RunOptions {
                panel,
                out,
                spec,
                shard: shard.parse::<Shard>()?,
                device: device.parse::<DeviceChoice>()?,
            })?;
        }
        Cmd::Merge { run, panel } => merge::merge(&run, panel.as_deref())?,
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
    alphanet::app::default_sigpipe();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
