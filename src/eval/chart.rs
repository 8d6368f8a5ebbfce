//! PNG line charts for the reports (plotters' bitmap backend). Text is drawn with DejaVu Sans
//! embedded from the `dejavu` crate through ab_glyph, so charts render the same on a headless
//! server with no system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::{Error, Result};

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1100, 600);
/// Fixed colours (Okabe–Ito, colour-blind safe), then plotters' palette beyond them.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

fn colour(k: usize) -> RGBColor {
    COLOURS.get(k).copied().unwrap_or_else(|| {
        let c = Palette99::pick(k).to_rgba();
        RGBColor(c.0, c.1, c.2)
    })
}

fn register() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // The bytes are a valid TTF shipped by the crate; a failure here is a build problem.
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "invalid font")
            .expect("DejaVu Sans from the dejavu crate");
    });
}

/// One named line: `values[k]` is plotted at x = k.
pub struct Line {
    pub name: String,
    pub values: Vec<f64>,
}

/// Draws `lines` against the day index, labelling the x axis with `dates` (one per point),
/// with a horizontal reference line at `baseline` when given.
pub fn line_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    dates: &[String],
    lines: &[Line],
    baseline: Option<f64>,
) -> Result<()> {
    register();
    let fail = |e: String| Error::Data(format!("chart {}: {e}", path.display()));
    let finite = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .chain(baseline)
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() || dates.is_empty() {
        return Err(fail("nothing to plot".into()));
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let x_max = dates.len().saturating_sub(1).max(1) as f64;

    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 26))
        .margin(16)
        .margin_right(44)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))
        .map_err(|e| fail(e.to_string()))?;
    let date_of = |x: &f64| {
        dates
            .get(x.round().max(0.0) as usize)
            .cloned()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(10)
        .x_label_formatter(&date_of)
        .y_desc(y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(b) = baseline {
        chart
            .draw_series(LineSeries::new(
                [(0.0, b), (x_max, b)],
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(|e| fail(e.to_string()))?;
    }
    for (k, line) in lines.iter().enumerate() {
        let c = colour(k);
        chart
            .draw_series(LineSeries::new(
                line.values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(x, &v)| (x as f64, v)),
                c.stroke_width(2),
            ))
            .map_err(|e| fail(e.to_string()))?
            .label(line.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}
