//! How factors are neutralized (docs/evaluation.md): by industry and size on a panel with
//! industry data, by size alone on one without. `eval`, `enhance` and `demo` share it, so that
//! all three see the panel the same way.

use crate::data::panel::{Panel, PanelView};

/// How factors are neutralized on a panel with industry data.
pub const BY_INDUSTRY_AND_SIZE: &str = "industry dummies + log market cap";
/// How they are neutralized on a panel without (docs/evaluation.md).
pub const BY_SIZE_ONLY: &str =
    "log market cap only: the panel has no industry data (imported without --industry)";

/// The industries neutralization uses: the panel's, or, when no stock of the panel has a known
/// industry, one common industry for every stock (so that factors are neutralized by size
/// alone), with the description of what was done. The second case is announced on stderr.
pub fn neutralization_industries(panel: &Panel) -> (Option<Vec<i16>>, &'static str) {
    if panel.industry().iter().any(|&k| k >= 0) {
        return (None, BY_INDUSTRY_AND_SIZE);
    }
    eprintln!(
        "note: panel {} has no industry data: industry is left out and size alone is neutralized / matched (re-import with --industry CSV to include industries)",
        panel.dir().display()
    );
    (Some(vec![0; panel.industry().len()]), BY_SIZE_ONLY)
}

/// The panel as evaluation sees it: with `one_industry` (from [`neutralization_industries`])
/// in place of its industries when it has none.
pub fn neutralization_view<'a>(
    panel: &'a Panel,
    one_industry: &'a Option<Vec<i16>>,
) -> PanelView<'a> {
    match one_industry {
        Some(industry) => PanelView {
            industry,
            ..panel.view()
        },
        None => panel.view(),
    }
}
