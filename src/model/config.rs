//! Model and loss configuration: the architectures of docs/models.md and the v2.1–v2.3 options.

use crate::ops::elementwise::Activation;
pub use crate::ops::loss::LossConfig;
use crate::ops::ts_features::OpSet;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// features → BN → pooling → BN → Dense(30, ReLU) → Dropout(0.5) → Dense(1)
    V1,
    /// features → BN → LSTM(30) → BN → Dropout → Dense(1)
    V2,
    /// two feature branches (strides 10 and 5) → BN → GRU(30) → BN, concatenated → Dense(1)
    V3,
}

/// How pictures are scaled before the feature layer (src/ops/normalize.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InputNorm {
    /// The raw series, as the report feeds them.
    #[default]
    None,
    /// Price-like series over the picture's last close, volume-like ones over their 30-day mean.
    Picture,
}

impl std::str::FromStr for InputNorm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(InputNorm::None),
            "picture" => Ok(InputNorm::Picture),
            _ => Err(Error::Config(format!(
                "--input-norm {s:?}: expected none (raw series) or picture (per-picture scaling)"
            ))),
        }
    }
}

/// The widest recurrent or dense layer: checked when a model is configured (`train`, `run`,
/// Python) and when a checkpoint is loaded, so that every model that trains can be loaded.
pub const MAX_WIDTH: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    /// Checkpoints written before the option existed fed raw pictures.
    #[serde(default)]
    pub input_norm: InputNorm,
    pub n_features: usize,
    pub days: usize,
    pub window: usize,
    pub stride: usize,
    /// v3's second branch.
    pub stride2: usize,
    pub ops: OpSet,
    /// v2.1: each model draws this many features once (from `seed`) and builds pairs among them.
    pub pair_sample: Option<usize>,
    pub hidden: usize,
    /// v1's hidden Dense width.
    pub dense_hidden: usize,
    /// v1's hidden Dense activation (ReLU in the report); checkpoints written before the option
    /// existed used ReLU.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout before the output Dense (v1 uses `v1_dropout` after its hidden Dense).
    pub dropout: f64,
    pub v1_dropout: f64,
    /// L2 on the output Dense kernel (Keras `l2(1e-3)`).
    pub l2: f64,
    pub bn_eps: f64,
    pub bn_momentum: f64,
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::V2,
            input_norm: InputNorm::None,
            n_features: 15,
            days: 30,
            window: 10,
            stride: 10,
            stride2: 5,
            ops: OpSet::ALL,
            pair_sample: None,
            hidden: 30,
            dense_hidden: 30,
            activation: Activation::Relu,
            dropout: 0.0,
            v1_dropout: 0.5,
            l2: 1e-3,
            bn_eps: 1e-3,
            bn_momentum: 0.99,
            seed: 0,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = self.pair_sample {
            if n < 2 || n > self.n_features {
                return Err(Error::Config(format!(
                    "--pair-sample {n}: must be between 2 and the number of features ({})",
                    self.n_features
                )));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "--dropout {}: must be in [0, 1)",
                self.dropout
            )));
        }
        if !(1..=MAX_WIDTH).contains(&self.hidden) {
            return Err(Error::Config(format!(
                "--hidden {}: must be 1 to {MAX_WIDTH} (the widest recurrent layer a checkpoint \
                 may hold)",
                self.hidden
            )));
        }
        if self.activation != Activation::Relu && self.arch != Arch::V1 {
            return Err(Error::Config(format!(
                "--activation {}: only v1 has a hidden Dense layer to apply it to (v2 and v3 end in \
                 Dense(1)); use it with --variant v1",
                self.activation.name()
            )));
        }
        if !(1..=MAX_WIDTH).contains(&self.dense_hidden) {
            return Err(Error::Config(format!(
                "dense_hidden {}: must be 1 to {MAX_WIDTH}",
                self.dense_hidden
            )));
        }
        if self.window > self.days || self.window < 2 {
            return Err(Error::Config(format!(
                "window {} must be in 2..={} (the picture length)",
                self.window, self.days
            )));
        }
        Ok(())
    }
}

/// The name users know a model by: the architecture (`v1`, `v2`, `v3`) and the improvements it
/// carries joined with `+`, e.g. `v2`, `v2.1+v2.3`, `v3+v2.2`; options that differ from the
/// named variants' values are spelled out (`v2.1(pairs 6)`, `v2.3(weight 3)`).
pub fn display_name(model: &ModelConfig, loss: &LossConfig) -> String {
    let arch = match model.arch {
        Arch::V1 => "v1",
        Arch::V2 => "v2",
        Arch::V3 => "v3",
    };
    let mut parts = vec![match model.activation {
        Activation::Relu => arch.to_string(),
        act => format!("{arch}({})", act.name()),
    }];
    match model.pair_sample {
        Some(8) => parts.push("v2.1".into()),
        Some(n) => parts.push(format!("v2.1(pairs {n})")),
        None => {}
    }
    if loss.neutralize {
        parts.push("v2.2".into());
    }
    match loss.long_weight {
        Some(2.0) => parts.push("v2.3".into()),
        Some(w) => parts.push(format!("v2.3(weight {w})")),
        None => {}
    }
    parts.join("+")
}

/// The report's named variants, as shorthand for the flags.
pub fn apply_variant(name: &str, model: &mut ModelConfig, loss: &mut LossConfig) -> Result<()> {
    if let Some(&(_, arch)) = ARCHS.iter().find(|a| a.0 == name) {
        model.arch = arch;
        return Ok(());
    }
    match name {
        "v2.1" => model.pair_sample = Some(8),
        "v2.2" => loss.neutralize = true,
        "v2.3" => loss.long_weight = Some(2.0),
        other => {
            return Err(Error::Config(format!(
                "unknown variant `{other}`: expected one of v1, v2, v3, v2.1, v2.2, v2.3"
            )))
        }
    }
    Ok(())
}

/// The architectures by the name a variant list gives them.
const ARCHS: [(&str, Arch); 3] = [("v1", Arch::V1), ("v2", Arch::V2), ("v3", Arch::V3)];

/// `model` (its architecture, pair sampling) and a loss with the variants of the comma-separated
/// list `variants` applied in order (`v2,v2.1,v2.3`; the `--variant` flag). A list that names two
/// architectures is refused: a model has one.
pub fn variant_configs(
    variants: &str,
    mut model: ModelConfig,
) -> Result<(ModelConfig, LossConfig)> {
    let mut loss = LossConfig::default();
    let names: Vec<&str> = (variants.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let archs: Vec<&str> = (names.iter().copied())
        .filter(|v| ARCHS.iter().any(|a| a.0 == *v))
        .collect();
    if archs.len() > 1 {
        return Err(Error::Config(format!(
            "--variant {variants}: names {} architectures ({}); a model has one: v1, v2 or v3, \
             combined with any of v2.1, v2.2, v2.3",
            archs.len(),
            archs.join(", ")
        )));
    }
    for v in names {
        apply_variant(v, &mut model, &mut loss)?;
    }
    Ok((model, loss))
}
