//! The files of an evaluation folder: the charts (cumulative RankIC, each factor's group NAVs,
//! the long-short NAVs), `metrics.json` with every number, and `report.md` (its text is
//! `report.rs`'s). File names come from [`slug`].

use std::path::Path;

use super::options::{EvalOptions, Source};
use super::report::{group_name, render_report};
use crate::data::panel::Panel;
use crate::eval::chart::{line_chart, Line};
use crate::eval::ic::by_year;
use crate::eval::layered::FactorEval;
use crate::util::fs::{write_file_atomically, write_json_atomically};
use crate::Result;

/// A file-name-safe form of a factor name.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(super) fn write_outputs(
    dir: &Path,
    panel: &Panel,
    opts: &EvalOptions,
    evals: &[(String, FactorEval)],
    sources: &[Source],
    neutralization: &str,
) -> Result<()> {
    let dates = &panel.meta().dates;
    // Cumulative RankIC over the union of signal dates (each factor on its own dates).
    let mut signal_days: Vec<usize> = evals
        .iter()
        .flat_map(|(_, e)| e.ic_series.iter().map(|x| x.0))
        .collect();
    signal_days.sort_unstable();
    signal_days.dedup();
    let cum_lines: Vec<Line> = evals
        .iter()
        .map(|(name, e)| {
            // NaN (not drawn) before the factor's first date, flat across dates it skips.
            let mut acc = f64::NAN;
            let mut it = e.ic_series.iter().peekable();
            let values = signal_days
                .iter()
                .map(|&t| {
                    if let Some((_, ic)) = it.next_if(|x| x.0 == t) {
                        acc = if acc.is_nan() { *ic } else { acc + ic };
                    }
                    acc
                })
                .collect();
            Line {
                name: name.clone(),
                values,
            }
        })
        .collect();
    let label_dates: Vec<String> = signal_days.iter().map(|&t| dates[t].clone()).collect();
    line_chart(
        &dir.join("ic_cumulative.png"),
        "Cumulative neutralized RankIC (every 10 trading days)",
        "cumulative RankIC",
        &label_dates,
        &cum_lines,
        Some(0.0),
    )?;

    let mut charts = vec!["ic_cumulative.png".to_string()];
    for (name, e) in evals {
        let day_dates: Vec<String> = e.layers.days.iter().map(|&d| dates[d].clone()).collect();
        let g = e.layers.groups.len();
        let lines: Vec<Line> = e
            .layers
            .excess_navs()
            .into_iter()
            .enumerate()
            .map(|(k, values)| Line {
                name: group_name(k, g),
                values,
            })
            .collect();
        let file = format!("groups_{}.png", slug(name));
        line_chart(
            &dir.join(&file),
            &format!("{name}: excess NAV of each group over the equal-weighted universe"),
            "excess NAV",
            &day_dates,
            &lines,
            Some(1.0),
        )?;
        charts.push(file);
    }
    // Long-short NAVs share one chart when the factors share their days (the usual case).
    let same_days = evals
        .iter()
        .all(|(_, e)| e.layers.days == evals[0].1.layers.days);
    let ls_groups: Vec<Vec<&(String, FactorEval)>> = if same_days {
        vec![evals.iter().collect()]
    } else {
        evals.iter().map(|e| vec![e]).collect()
    };
    for group in ls_groups {
        let file = if same_days {
            "long_short.png".to_string()
        } else {
            format!("long_short_{}.png", slug(&group[0].0))
        };
        let day_dates: Vec<String> = group[0]
            .1
            .layers
            .days
            .iter()
            .map(|&d| dates[d].clone())
            .collect();
        let lines: Vec<Line> = group
            .iter()
            .map(|(name, e)| Line {
                name: name.clone(),
                values: e.layers.long_short_nav(),
            })
            .collect();
        line_chart(
            &dir.join(&file),
            "Long-short NAV (top group − bottom group, daily, after costs)",
            "NAV",
            &day_dates,
            &lines,
            Some(1.0),
        )?;
        charts.push(file);
    }

    let metrics = serde_json::json!({
        "panel": panel.dir(),
        "config": opts.layers,
        "neutralization": neutralization,
        "factors": evals.iter().zip(sources).map(|((name, e), source)| {
            let mut entry = serde_json::json!({
            "name": name,
            "first_signal": dates[e.layers.signal_dates[0]],
            "last_signal": dates[e.layers.signal_dates[e.layers.signal_dates.len() - 1]],
            "rank_ic": e.ic,
            "raw_rank_ic": e.raw_ic,
            "rank_ic_by_year": by_year(&e.ic_series, dates).into_iter()
                .map(|(y, v)| (y, serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "rank_ic_series": e.ic_series.iter().map(|(t, ic)| (dates[*t].clone(), *ic)).collect::<Vec<_>>(),
            "style_exposure": panel.meta().style_names.iter().zip(&e.style_exposure)
                .map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "layers": e.summary,
            "degenerate_signal_dates": e.degenerate_dates,
            });
            if let (Some(entry), serde_json::Value::Object(extra)) = (entry.as_object_mut(), source.json()) {
                entry.extend(extra);
            }
            entry
        }).collect::<Vec<_>>(),
        "charts": charts,
    });
    write_json_atomically(&dir.join("metrics.json"), &metrics)?;
    let report = render_report(panel, opts, evals, sources, &charts, neutralization);
    write_file_atomically(&dir.join("report.md"), report.as_bytes())
}
