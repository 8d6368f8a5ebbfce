//! Command-line arguments shared by several commands (clap derive).

use crate::autograd::adam::AdamConfig;
use crate::cuda::DeviceChoice;
use crate::model::{variant_configs, Arch, InputNorm, LossConfig, ModelConfig};
use crate::ops::elementwise::Activation;
use crate::ops::ts_features::OpSet;
use crate::train::trainer::{LabelNorm, SelectBy, TrainConfig};
use crate::{Error, Result};
use clap::Args;

/// Which model to build and which loss to train it with.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Report variants, comma separated, combined (e.g. `v2`, `v2.1`, `v2.1,v2.3`, `v3`).
    #[arg(long, default_value = "v2")]
    pub variant: String,
    /// Architecture (overrides the one implied by --variant).
    #[arg(long, value_enum)]
    pub model: Option<Arch>,
    /// v2.1: each model draws N of the 15 features and builds pairs only among them.
    #[arg(long, value_name = "N")]
    pub pair_sample: Option<usize>,
    /// v2.2: neutralize predictions against the style exposures inside the loss.
    #[arg(long)]
    pub neutralize_loss: bool,
    /// v2.3: weight W for samples whose label is in the top half of their date.
    #[arg(long, value_name = "W", allow_negative_numbers = true)]
    pub long_weight: Option<f64>,
    #[command(flatten)]
    pub net: NetArgs,
}

/// The network's shape, whatever the variant: `train` and `demo` take it within [`ModelArgs`],
/// `run` beside its `--variants`.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Feature-layer ops, comma separated (corr,cov,stddev,zscore,return,decaylinear,mean).
    #[arg(long, default_value = "corr,cov,stddev,zscore,return,decaylinear,mean")]
    pub ops: String,
    /// Dropout before the output layer (v2, v3).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub dropout: f64,
    /// Recurrent units.
    #[arg(long, default_value_t = 30)]
    pub hidden: usize,
    /// Picture scaling before the feature layer: none (the report's raw series) or picture
    /// (prices over the last close, volumes over their 30-day mean; docs/models.md).
    #[arg(long, value_enum, default_value_t = InputNorm::None)]
    pub input_norm: InputNorm,
    /// Activation of v1's hidden Dense layer: relu (the report's) or tanh.
    #[arg(long, default_value = "relu")]
    pub activation: String,
}

impl NetArgs {
    pub fn activation(&self) -> Result<Activation> {
        parse_activation(&self.activation)
    }
}

/// An `--activation` value.
pub fn parse_activation(s: &str) -> Result<Activation> {
    Activation::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
        Error::Config(format!(
            "--activation {s}: expected one of {}",
            names.join(", ")
        ))
    })
}

/// What `train` and `demo` both take, in this order: the device, the model, the training settings.
#[derive(Debug, Clone, Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub train: TrainArgs,
}

/// `--device` of the commands that train or predict (`bench` has its own, defaulting to the CPU).
#[derive(Debug, Clone, Args)]
pub struct DeviceArg {
    /// auto (the first GPU if one is usable, else the CPU), cpu, or cuda:K.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl DeviceArg {
    pub fn choice(&self) -> Result<DeviceChoice> {
        self.device.parse()
    }
}

impl ModelArgs {
    pub fn configs(&self, seed: u64) -> Result<(ModelConfig, LossConfig)> {
        let m = ModelConfig {
            seed,
            dropout: self.net.dropout,
            hidden: self.net.hidden,
            input_norm: self.net.input_norm,
            activation: self.net.activation()?,
            ops: OpSet::parse(&self.net.ops)?,
            ..ModelConfig::default()
        };
        let (mut m, mut l) = variant_configs(&self.variant, m)?;
        if let Some(a) = self.model {
            m.arch = a;
        }
        if self.pair_sample.is_some() {
            m.pair_sample = self.pair_sample;
        }
        if self.neutralize_loss {
            l.neutralize = true;
        }
        if let Some(w) = self.long_weight {
            if !(w.is_finite() && w > 0.0) {
                return Err(Error::Config(format!(
                    "--long-weight {w}: must be a positive number"
                )));
            }
            l.long_weight = Some(w);
        }
        m.validate()?;
        Ok((m, l))
    }
}

/// Optimiser and loop settings.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Early-stopping patience in epochs (of no improvement in the --select-by metric).
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// Validation metric for early stopping and the best epoch: rankic (mean daily RankIC,
    /// higher is better) or mse (the configured loss, the report's formulation).
    #[arg(long, default_value = SelectBy::DEFAULT.name())]
    pub select_by: String,
    /// Training targets per date: rank (percentile ranks scaled to unit variance, qlib's
    /// CSRankNorm) or zscore (the report's standardized returns).
    #[arg(long, default_value = LabelNorm::DEFAULT.name())]
    pub label: String,
    /// Samples per batch (whole dates, filled to about this size).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    pub lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl TrainArgs {
    pub fn config(&self) -> Result<TrainConfig> {
        if self.batch == 0 || self.epochs == 0 || self.patience == 0 {
            return Err(Error::Config(format!(
                "--batch {}, --epochs {} and --patience {} must each be at least 1",
                self.batch, self.epochs, self.patience
            )));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::Config(format!(
                "--lr {}: must be a positive number",
                self.lr
            )));
        }
        Ok(TrainConfig {
            epochs: self.epochs,
            patience: self.patience,
            batch_size: self.batch,
            adam: AdamConfig {
                lr: self.lr,
                ..AdamConfig::default()
            },
            seed: self.seed,
            select_by: self.select_by.parse()?,
            label: self.label.parse()?,
        })
    }
}

/// Sets the size of rayon's global pool once per process.
pub fn init_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            return Err(Error::Config("--threads must be at least 1".into()));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::Config(format!("--threads {n}: {e}")))?;
    }
    Ok(())
}

/// Parses `A:B` (e.g. `--split 4:1`).
pub fn parse_ratio(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::Config(format!(
            "--split {s}: expected two positive integers like 4:1"
        ))
    };
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || b == 0 {
        return Err(bad());
    }
    Ok((a, b))
}
