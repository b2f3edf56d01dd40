//! The report's figures as PNG bytes: metric curves, and a 2-D density with points over it.
//!
//! Drawn by `plotters` into a memory buffer and encoded by `png`; text uses DejaVu Sans,
//! vendored in `assets/` and registered with plotters' `ab_glyph` renderer, so no system font
//! library is needed.

use super::density::{DensityGrid, PICTURE_SIDE};
use super::metrics::MetricsLog;
use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera licence: `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name the figures ask for.
const FAMILY: &str = "sans-serif";
/// One metric panel, in pixels.
const PANEL: (u32, u32) = (520, 300);
/// The density figure, in pixels.
const DENSITY: (u32, u32) = (620, 600);
/// Curves longer than this are thinned to about this many points.
const MAX_POINTS: usize = 4000;

/// Registers the vendored font once.
fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| anyhow!("the vendored font assets/DejaVuSans.ttf did not load"))
}

/// How a panel's y axis maps values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// y itself.
    Linear,
    /// log10 y (positive values only).
    Log,
    /// sign(y) log10(1 + |y| / c): linear within c of zero, logarithmic beyond.
    Symlog(f64),
}

impl Scale {
    /// Log for positive values whose max / min is at least 30; symlog for values that reach
    /// zero or below and whose largest magnitude is at least 300 times a tenth of their median
    /// magnitude; linear otherwise.
    pub fn choose(values: &[f64]) -> Scale {
        let v: Vec<f64> = values.iter().copied().filter(|y| y.is_finite()).collect();
        if v.is_empty() {
            return Scale::Linear;
        }
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if min > 0.0 {
            return if max / min >= 30.0 {
                Scale::Log
            } else {
                Scale::Linear
            };
        }
        let mut mags: Vec<f64> = v.iter().map(|y| y.abs()).collect();
        mags.sort_by(f64::total_cmp);
        let c = 0.1 * mags[mags.len() / 2];
        let largest = mags[mags.len() - 1];
        if c > 0.0 && largest / c >= 300.0 {
            Scale::Symlog(c)
        } else {
            Scale::Linear
        }
    }

    fn forward(self, y: f64) -> f64 {
        match self {
            Scale::Linear => y,
            Scale::Log => y.log10(),
            Scale::Symlog(c) => y.signum() * (1.0 + y.abs() / c).log10(),
        }
    }

    fn inverse(self, t: f64) -> f64 {
        match self {
            Scale::Linear => t,
            Scale::Log => 10f64.powf(t),
            Scale::Symlog(c) => t.signum() * c * (10f64.powf(t.abs()) - 1.0),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scale::Linear => "",
            Scale::Log => " (log scale)",
            Scale::Symlog(_) => " (symlog scale)",
        }
    }
}

/// A number in at most about 4 significant digits.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// Each metric's curve over the steps, one panel per metric, two panels a row.
pub fn metric_curves(log: &MetricsLog) -> Result<Vec<u8>> {
    font()?;
    let n = log.series.len().max(1);
    let cols = n.min(2);
    let rows = n.div_ceil(cols);
    let (w, h) = (PANEL.0 * cols as u32, PANEL.1 * rows as u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((rows, cols));
        for ((name, points), area) in log.series.iter().zip(panels.iter()) {
            panel(area, name, points)?;
        }
        root.present()?;
    }
    encode(&buf, w, h)
}

/// One metric's panel.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    name: &str,
    points: &[(f64, f64)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let stride = points.len().div_ceil(MAX_POINTS).max(1);
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let scale = Scale::choose(&values);
    let shown: Vec<(f64, f64)> = points
        .iter()
        .step_by(stride)
        .chain(points.last())
        .map(|&(s, y)| (s, scale.forward(y)))
        .filter(|p| p.1.is_finite())
        .collect();
    let (x0, x1) = padded(shown.iter().map(|p| p.0), 0.0);
    let (y0, y1) = padded(shown.iter().map(|p| p.1), 0.05);

    let mut chart = ChartBuilder::on(area)
        .caption(format!("{name}{}", scale.label()), (FAMILY, 18))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("step")
        .label_style((FAMILY, 12))
        .x_label_formatter(&|s| short(*s))
        .y_label_formatter(&|t| {
            // A tick at zero computed as a rounding residue (-2.2e-16) reads as 0.
            let t = if t.abs() < 1e-9 * (y1 - y0) { 0.0 } else { *t };
            short(scale.inverse(t))
        })
        .draw()?;
    let colour = RGBColor(31, 119, 180);
    if shown.len() == 1 {
        chart.draw_series(shown.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    } else {
        chart.draw_series(LineSeries::new(shown, colour.stroke_width(2)))?;
    }
    Ok(())
}

/// (min, max) of the values widened by `pad` of their span; when they are all equal, by half
/// their magnitude (so that a constant 1e-4 is drawn on [5e-5, 1.5e-4], not on [-0.5, 0.5]
/// where its ticks would read 0), or by 0.5 when they are all 0.
fn padded(v: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let half = if lo == 0.0 { 0.5 } else { 0.5 * lo.abs() };
        return (lo - half, hi + half);
    }
    let m = pad * (hi - lo);
    (lo - m, hi + m)
}

/// The density as a heat map (viridis, scaled to its maximum), with the data as white dots and
/// the model's samples as orange dots over it.
pub fn density_map(grid: &DensityGrid, data: &[[f64; 2]], samples: &[[f64; 2]]) -> Result<Vec<u8>> {
    let caption = format!(
        "learned density exp(-E)/Z, log Z = {}, mass shown {}",
        short(grid.log_z),
        short(grid.mass_in_view)
    );
    let (w, h) = DENSITY;
    encode(&density_rgb(grid, data, samples, &caption)?, w, h)
}

/// Several density panels (RGB bytes of [`density_rgb`]) side by side, `columns` to a row,
/// as PNG bytes; empty places are white.
pub fn density_panels(panels: &[Vec<u8>], columns: usize) -> Result<Vec<u8>> {
    let (w, h) = (DENSITY.0 as usize, DENSITY.1 as usize);
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let width = w * columns;
    let mut out = vec![255u8; width * h * rows * 3];
    for (k, panel) in panels.iter().enumerate() {
        let (top, left) = ((k / columns) * h, (k % columns) * w);
        for y in 0..h {
            let from = &panel[y * w * 3..(y + 1) * w * 3];
            let at = ((top + y) * width + left) * 3;
            out[at..at + w * 3].copy_from_slice(from);
        }
    }
    encode(&out, width as u32, (h * rows) as u32)
}

/// The density figure as RGB bytes (`DENSITY` pixels), under `caption`.
pub fn density_rgb(
    grid: &DensityGrid,
    data: &[[f64; 2]],
    samples: &[[f64; 2]],
    caption: &str,
) -> Result<Vec<u8>> {
    font()?;
    let (w, h) = DENSITY;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let ([x0, x1], [y0, y1]) = grid.view.ranges();
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FAMILY, 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FAMILY, 12))
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .draw()?;

        // The cells, row by row from the top, as on the grid.
        let max = grid
            .density
            .iter()
            .copied()
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let cell = grid.view.spacing(PICTURE_SIDE);
        let cells = grid.density.iter().enumerate().map(|(k, p)| {
            let (row, col) = (k / PICTURE_SIDE, k % PICTURE_SIDE);
            let (left, top) = (x0 + col as f64 * cell, y1 - row as f64 * cell);
            let colour = viridis(p / max);
            Rectangle::new([(left, top), (left + cell, top - cell)], colour.filled())
        });
        chart.draw_series(cells)?;

        let inside = |p: &&[f64; 2]| (x0..x1).contains(&p[0]) && (y0..y1).contains(&p[1]);
        let white = RGBColor(255, 255, 255);
        let orange = RGBColor(255, 127, 14);
        if !data.is_empty() {
            chart
                .draw_series(
                    data.iter()
                        .filter(inside)
                        .map(|p| Circle::new((p[0], p[1]), 2, white.filled())),
                )?
                .label("data")
                .legend(move |(x, y)| Circle::new((x, y), 3, white.filled()));
        }
        if !samples.is_empty() {
            chart
                .draw_series(
                    samples
                        .iter()
                        .filter(inside)
                        .map(|p| Circle::new((p[0], p[1]), 2, orange.filled())),
                )?
                .label("model samples")
                .legend(move |(x, y)| Circle::new((x, y), 3, orange.filled()));
        }
        if !data.is_empty() || !samples.is_empty() {
            chart
                .configure_series_labels()
                .background_style(RGBColor(60, 60, 60).mix(0.8))
                .label_font((FAMILY, 13).into_font().color(&WHITE))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        root.present()?;
    }
    Ok(buf)
}

/// Anchors of the viridis colour map (van der Walt & Smith), at 0, 1/4, 1/2, 3/4 and 1.
const VIRIDIS: [(u8, u8, u8); 5] = [
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
];

/// The viridis colour of `t` in [0, 1], interpolated linearly between its anchors.
fn viridis(t: f64) -> RGBColor {
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + f * (q as f64 - p as f64)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// RGB bytes to a PNG file's bytes.
fn encode(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("encoding a PNG")?;
        writer.write_image_data(rgb).context("encoding a PNG")?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_series_gets_an_axis_around_its_value() {
        // Rounding only: 1e-4 + 5e-5 is not exactly 1.5e-4 in f64.
        let (lo, hi) = padded([1e-4, 1e-4].into_iter(), 0.05);
        assert!(
            (lo - 5e-5).abs() < 1e-18 && (hi - 1.5e-4).abs() < 1e-18,
            "{lo} {hi}"
        );
        assert_eq!(padded([-2.0].into_iter(), 0.05), (-3.0, -1.0));
        assert_eq!(padded([0.0, 0.0].into_iter(), 0.05), (-0.5, 0.5));
        let (lo, hi) = padded([1.0, 3.0].into_iter(), 0.05);
        assert!((lo - 0.9).abs() < 1e-12 && (hi - 3.1).abs() < 1e-12);
    }

    #[test]
    fn scales_follow_the_spread_of_the_values() {
        assert_eq!(Scale::choose(&[1.0, 2.0, 3.0]), Scale::Linear);
        assert_eq!(Scale::choose(&[100.0, 1.0, 0.5]), Scale::Log);
        assert!(matches!(
            Scale::choose(&[500.0, 1.0, 0.5, -0.2]),
            Scale::Symlog(_)
        ));
        assert_eq!(Scale::choose(&[-1.0, 0.5, -0.7]), Scale::Linear);
        for s in [Scale::Linear, Scale::Log, Scale::Symlog(0.3)] {
            for y in [0.5, 2.0, 1234.5] {
                assert!((s.inverse(s.forward(y)) - y).abs() < 1e-9 * y, "{s:?} {y}");
            }
        }
    }

    #[test]
    fn short_numbers_keep_four_significant_digits() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1.23456), "1.235");
        assert_eq!(short(1500.0), "1500");
        assert_eq!(short(-0.5), "-0.5");
        assert_eq!(short(1e-7), "1.00e-7");
    }
}
