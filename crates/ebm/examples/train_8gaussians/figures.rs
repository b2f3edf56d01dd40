//! The two figures, drawn by hand into an RGB pixel buffer and encoded as PNG (no fonts, no
//! plotting library: the axes' ranges are printed by the example instead).

/// An RGB colour.
pub type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const GRID: Rgb = [225, 225, 225];
const FRAME: Rgb = [150, 150, 150];
const RAW_LOSS: Rgb = [170, 200, 235];
const SMOOTH_LOSS: Rgb = [20, 70, 150];
const DATA_DOT: Rgb = [255, 255, 255];
const DATA_RIM: Rgb = [0, 0, 0];

/// A picture as rows of RGB pixels, top row first.
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        Canvas {
            width,
            height,
            pixels: vec![background; width * height],
        }
    }

    /// Paints pixel (`x`, `y`), counted from the top left; pixels off the canvas are skipped.
    pub fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        if (0..self.width as i64).contains(&x) && (0..self.height as i64).contains(&y) {
            self.pixels[y as usize * self.width + x as usize] = colour;
        }
    }

    /// Paints the rectangle of columns `x0..x1` and rows `y0..y1`.
    pub fn fill(&mut self, (x0, x1): (i64, i64), (y0, y1): (i64, i64), colour: Rgb) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.set(x, y, colour);
            }
        }
    }

    /// Paints a disc of radius `r` pixels around (`cx`, `cy`).
    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, colour: Rgb) {
        let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
        let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r {
                    self.set(x, y, colour);
                }
            }
        }
    }

    /// The picture as an 8-bit RGB PNG file.
    pub fn to_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(self.pixels.as_flattened())?;
        writer.finish()?;
        Ok(bytes)
    }
}

/// Matplotlib's viridis at 0, 0.1, ..., 1: dark blue-violet through teal to yellow, evenly
/// bright in steps, and readable in grey and by colour-blind eyes.
const VIRIDIS: [Rgb; 11] = [
    [68, 1, 84],
    [72, 36, 117],
    [65, 68, 135],
    [53, 95, 141],
    [42, 120, 142],
    [33, 145, 140],
    [34, 168, 132],
    [68, 191, 112],
    [122, 209, 81],
    [189, 223, 38],
    [253, 231, 37],
];

/// Viridis at `t` in [0, 1] (clamped), interpolated linearly between the anchors.
pub fn viridis(t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    std::array::from_fn(|c| (a[c] as f64 + f * (b[c] as f64 - a[c] as f64)).round() as u8)
}

/// The heat map of a density given on a square grid of `side` x `side` pixels (row-major, the
/// first row at the top), coloured by viridis from 0 to its maximum, with `dots` (already in
/// pixel coordinates) drawn on top as small white discs with a dark rim.
pub fn density_map(density: &[f64], side: usize, dots: &[(f64, f64)]) -> Canvas {
    assert_eq!(
        density.len(),
        side * side,
        "density_map: {side} x {side} values expected"
    );
    let mut canvas = Canvas::new(side, side, WHITE);

    // Density: linear scale, so that the picture shows where the mass is.
    let max = density.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    for (i, &p) in density.iter().enumerate() {
        canvas.set((i % side) as i64, (i / side) as i64, viridis(p / max));
    }

    // Data on top.
    for &(x, y) in dots {
        canvas.disc(x, y, 2.2, DATA_RIM);
        canvas.disc(x, y, 1.4, DATA_DOT);
    }
    canvas
}

/// The loss curve over a light grid of 10 x 8 cells: the raw loss averaged within each pixel
/// column as a thin pale line, and the `smoothed` curve on top as a thick dark one.
///
/// # Returns
/// The chart and its y range: from the lowest to the highest point of either curve, with 5%
/// room on each side.
pub fn loss_chart(
    raw: &[f64],
    smoothed: &[f64],
    (width, height): (usize, usize),
) -> (Canvas, (f64, f64)) {
    assert!(
        !raw.is_empty() && raw.len() == smoothed.len(),
        "loss_chart: one value per step"
    );
    let mut canvas = Canvas::new(width, height, WHITE);
    let margin = 20i64;
    let (w, h) = (width as i64 - 2 * margin, height as i64 - 2 * margin);

    // Each pixel column covers a range of steps: the mean raw loss over them, and the smoothed
    // loss at the last of them.
    let steps = raw.len();
    let (mut column_means, mut column_smoothed) = (Vec::new(), Vec::new());
    for col in 0..w as usize {
        let first = (col * steps / w as usize).min(steps - 1);
        let last = ((col + 1) * steps / w as usize).clamp(first + 1, steps);
        let covered = &raw[first..last];
        column_means.push(covered.iter().sum::<f64>() / covered.len() as f64);
        column_smoothed.push(smoothed[last - 1]);
    }

    // The y range, and the row of a value in it.
    let both = column_means.iter().chain(&column_smoothed).copied();
    let lo = both.clone().fold(f64::INFINITY, f64::min);
    let hi = both.fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.05 * (hi - lo).max(1e-12);
    let (lo, hi) = (lo - pad, hi + pad);
    let row_of = |v: f64| {
        let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        margin + ((1.0 - t) * (h - 1) as f64).round() as i64
    };

    // Grid and frame.
    for k in 0..=10 {
        let x = margin + k * (w - 1) / 10;
        let colour = if k == 0 || k == 10 { FRAME } else { GRID };
        canvas.fill((x, x + 1), (margin, margin + h), colour);
    }
    for k in 0..=8 {
        let y = margin + k * (h - 1) / 8;
        let colour = if k == 0 || k == 8 { FRAME } else { GRID };
        canvas.fill((margin, margin + w), (y, y + 1), colour);
    }

    // The two curves.
    let rows = |values: &[f64]| values.iter().map(|&v| row_of(v)).collect::<Vec<_>>();
    draw_curve(&mut canvas, margin, &rows(&column_means), 1, RAW_LOSS);
    draw_curve(&mut canvas, margin, &rows(&column_smoothed), 2, SMOOTH_LOSS);
    (canvas, (lo, hi))
}

/// A curve with one row per pixel column from column `x0` on, each joined to the one before
/// by a vertical run, `thickness` pixels wide.
fn draw_curve(canvas: &mut Canvas, x0: i64, rows: &[i64], thickness: i64, colour: Rgb) {
    let mut previous = None;
    for (i, &row) in rows.iter().enumerate() {
        let (top, bottom) = match previous {
            Some(p) => (row.min(p), row.max(p)),
            None => (row, row),
        };
        let x = x0 + i as i64;
        canvas.fill(
            (x + 1 - thickness, x + 1),
            (top, bottom + thickness),
            colour,
        );
        previous = Some(row);
    }
}

/// An exponential moving average of `values` with a time constant of `span` steps, corrected
/// for its start (as Adam's moments are), so that the first values are not pulled to zero.
pub fn smooth(values: &[f64], span: f64) -> Vec<f64> {
    let decay = 1.0 - 1.0 / span.max(1.0);
    let (mut avg, mut weight) = (0.0, 0.0);
    values
        .iter()
        .map(|&v| {
            avg = decay * avg + (1.0 - decay) * v;
            weight = decay * weight + (1.0 - decay);
            avg / weight
        })
        .collect()
}
