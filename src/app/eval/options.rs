//! What `alphanet eval`'s arguments turn into ([`EvalOptions`]) and where each evaluated factor
//! came from ([`Source`]: a file, or a baseline restricted to the first factor), which
//! `metrics.json` and `report.md` both record.

use std::path::PathBuf;

use crate::eval::baselines::Baseline;
use crate::eval::factor::FactorSpec;
use crate::eval::layered::LayerConfig;

pub struct EvalOptions {
    pub panel: PathBuf,
    pub factors: Vec<FactorSpec>,
    pub out: PathBuf,
    pub layers: LayerConfig,
    /// Baselines to score beside the factors (empty: none), restricted to the first factor.
    pub baselines: Vec<Baseline>,
}

/// Where an evaluated factor came from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A `--factor NAME=PATH`.
    File(FactorSpec),
    /// A baseline computed from the panel, restricted to the cells where `restricted_to` (the
    /// first factor) has a value; `coverage` = share of those cells where it is defined.
    Baseline {
        baseline: Baseline,
        restricted_to: String,
        coverage: f64,
    },
}

impl Source {
    pub(super) fn json(&self) -> serde_json::Value {
        match self {
            Source::File(spec) => serde_json::json!({ "kind": "factor", "file": spec.path }),
            Source::Baseline {
                baseline,
                restricted_to,
                coverage,
            } => serde_json::json!({
                "kind": "baseline",
                "formula": baseline.formula(),
                "restricted_to": restricted_to,
                "coverage": coverage,
            }),
        }
    }
}
