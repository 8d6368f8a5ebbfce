//! `alphanet synth`: writes a synthetic panel with a planted, learnable alpha.

use crate::data::panel::Panel;
use crate::data::synth::{write_synth, SynthConfig};
use crate::Result;
use std::path::{Path, PathBuf};

/// The arguments of `alphanet synth`.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthCommand {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = SynthConfig::default().stocks)]
    pub stocks: usize,
    #[arg(long, default_value_t = SynthConfig::default().days)]
    pub days: usize,
    #[arg(long, default_value_t = SynthConfig::default().seed)]
    pub seed: u64,
}

impl SynthCommand {
    pub fn config(&self) -> SynthConfig {
        SynthConfig {
            stocks: self.stocks,
            days: self.days,
            seed: self.seed,
        }
    }

    pub fn run(self) -> Result<()> {
        synth(&self.config(), &self.out)
    }
}

pub fn synth(cfg: &SynthConfig, out: &Path) -> Result<()> {
    write_synth(cfg, out)?;
    let panel = Panel::open(out)?;
    let oracle = panel
        .meta()
        .oracle
        .as_ref()
        .map(|o| o.rank_ic_mean)
        .unwrap_or(f64::NAN);
    println!(
        "wrote {}: {} dates × {} stocks, oracle RankIC mean {oracle:.4}",
        out.display(),
        panel.n_dates(),
        panel.n_stocks()
    );
    Ok(())
}
