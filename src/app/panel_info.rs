//! `panel-info`: what a panel holds and how much of it the sample filters keep.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::panel::{flags, Panel};
use crate::data::samples::{
    date_universe, raw_labels, Exclusions, Universe, HORIZON, N_FEATURES, PICTURE_DAYS,
};
use crate::Result;

/// The arguments of `alphanet panel-info`.
#[derive(Debug, Clone, clap::Args)]
pub struct PanelInfoCommand {
    pub panel: PathBuf,
}

impl PanelInfoCommand {
    /// Prints the report.
    pub fn run(self) -> Result<()> {
        print!("{}", panel_info(&self.panel)?.render());
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct PanelInfo {
    pub source: String,
    pub n_dates: usize,
    pub first_date: String,
    pub last_date: String,
    pub n_stocks: usize,
    /// Dates that can hold a sample (30 days of history before, 11 after).
    pub sample_dates: usize,
    /// Training-universe samples per such date: min, median, max.
    pub samples_per_date: (usize, usize, usize),
    pub total_samples: usize,
    pub exclusions: Exclusions,
    /// Per feature: share of non-finite values over listed, unsuspended stock-days.
    pub missing_share: Vec<(String, f64)>,
    /// Per style: share of listed stock-days with a value.
    pub style_coverage: Vec<(String, f64)>,
    pub missing_styles: Vec<String>,
    pub n_industries: usize,
    /// Share of listed stock-days with a known industry.
    pub industry_coverage: f64,
    pub proxies: Vec<String>,
}

pub fn panel_info(dir: &Path) -> Result<PanelInfo> {
    let panel = Panel::open(dir)?;
    let meta = panel.meta();
    let view = panel.view();
    let (t_len, n) = (panel.n_dates(), panel.n_stocks());
    let labels = raw_labels(view);
    let candidates: Vec<usize> = (PICTURE_DAYS - 1..t_len.saturating_sub(HORIZON)).collect();
    let per_date: Vec<(usize, Exclusions)> = candidates
        .par_iter()
        .map(|&t| {
            let mut ex = Exclusions::default();
            let k = date_universe(view, &labels, t, Universe::Train, &mut ex).len();
            (k, ex)
        })
        .collect();
    let mut counts: Vec<usize> = per_date.iter().map(|p| p.0).collect();
    let mut exclusions = Exclusions::default();
    for (_, ex) in &per_date {
        exclusions.add(ex);
    }
    counts.sort_unstable();
    let samples_per_date = match counts.len() {
        0 => (0, 0, 0),
        c => (counts[0], counts[c / 2], counts[c - 1]),
    };

    let tradable = panel.tradable();
    let listed = |cell: usize| tradable[cell] & flags::LISTED != 0;
    let traded = |cell: usize| tradable[cell] & (flags::LISTED | flags::SUSPENDED) == flags::LISTED;
    let n_traded = (0..t_len * n).filter(|&c| traded(c)).count().max(1);
    let n_listed = (0..t_len * n).filter(|&c| listed(c)).count().max(1);
    let features = panel.features();
    let missing_share = meta
        .feature_names
        .iter()
        .enumerate()
        .map(|(f, name)| {
            let miss = (0..t_len * n)
                .filter(|&c| traded(c) && !features[c * N_FEATURES + f].is_finite())
                .count();
            (name.clone(), miss as f64 / n_traded as f64)
        })
        .collect();
    let k = panel.n_styles();
    let styles = panel.styles();
    let style_coverage = meta
        .style_names
        .iter()
        .enumerate()
        .map(|(s, name)| {
            let have = (0..t_len * n)
                .filter(|&c| listed(c) && styles[c * k + s].is_finite())
                .count();
            (name.clone(), have as f64 / n_listed as f64)
        })
        .collect();
    let industry = panel.industry();
    let with_industry = (0..t_len * n)
        .filter(|&c| listed(c) && industry[c] >= 0)
        .count();
    Ok(PanelInfo {
        source: meta.source.clone(),
        n_dates: t_len,
        first_date: meta.dates[0].clone(),
        last_date: meta.dates[t_len - 1].clone(),
        n_stocks: n,
        sample_dates: candidates.len(),
        samples_per_date,
        total_samples: counts.iter().sum(),
        exclusions,
        missing_share,
        style_coverage,
        missing_styles: meta.missing_styles.clone(),
        n_industries: meta.industry_names.len(),
        industry_coverage: with_industry as f64 / n_listed as f64,
        proxies: meta.proxies.clone(),
    })
}

impl PanelInfo {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let pct = |x: f64| format!("{:.2}%", 100.0 * x);
        let _ = writeln!(s, "source        {}", self.source);
        let _ = writeln!(
            s,
            "dates         {} ({} .. {})",
            self.n_dates, self.first_date, self.last_date
        );
        let _ = writeln!(s, "stocks        {}", self.n_stocks);
        let (lo, med, hi) = self.samples_per_date;
        let _ = writeln!(
            s,
            "samples       {} over {} dates with room for a picture and a label; per date min {lo} / median {med} / max {hi} (training universe, docs/data.md)",
            self.total_samples, self.sample_dates
        );
        let _ = writeln!(s, "excluded      {}", self.exclusions);
        let _ = writeln!(
            s,
            "missing values per feature (listed, unsuspended stock-days):"
        );
        for (name, share) in &self.missing_share {
            let _ = writeln!(s, "  {name:<16} {:>8}", pct(*share));
        }
        let _ = writeln!(
            s,
            "styles present (share of listed stock-days with a value):"
        );
        for (name, share) in &self.style_coverage {
            let _ = writeln!(s, "  {name:<20} {:>8}", pct(*share));
        }
        let _ = writeln!(s, "styles missing  {}", self.missing_styles.join(", "));
        let _ = writeln!(
            s,
            "industries    {} (known for {} of listed stock-days)",
            self.n_industries,
            pct(self.industry_coverage)
        );
        let _ = writeln!(s, "proxies:");
        for p in &self.proxies {
            let _ = writeln!(s, "  - {p}");
        }
        s
    }
}
