//! Points on disk: CSV and NPY in, CSV, NPY and PNG grids out, written atomically.

use anyhow::{Context, Result, bail};
use ebm_tensor::Tensor;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The points in a `.csv` (one point per line, comma-separated numbers, an optional header
/// line) or `.npy` (little-endian f32 or f64, C order, any rank) file, `[n, ...]`.
///
/// Refuses non-finite values, naming the file and the row. (`ebm::data::load` will take its
/// place when the data module has it.)
pub fn read_points(path: &Path) -> Result<Tensor<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let x = match extension(path).as_str() {
        "npy" => {
            parse_npy(&bytes).with_context(|| format!("{} is not a valid .npy", path.display()))?
        }
        "csv" => parse_csv(&bytes).with_context(|| format!("cannot parse {}", path.display()))?,
        other => bail!(
            "{}: unknown extension {other:?}; use .csv or .npy",
            path.display()
        ),
    };
    if x.rank() < 2 || x.dim(0) == 0 {
        bail!(
            "{} holds no points (shape {:?}); expected [n, d] with n >= 1",
            path.display(),
            x.dims()
        );
    }
    let per_row = x.numel() / x.dim(0);
    if let Some(k) = x.data().iter().position(|v| !v.is_finite()) {
        bail!(
            "{} has a non-finite value ({}) in row {}; remove or fix that row",
            path.display(),
            x.data()[k],
            k / per_row
        );
    }
    Ok(x)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn parse_csv(bytes: &[u8]) -> Result<Tensor<f64>> {
    let text = std::str::from_utf8(bytes).context("not UTF-8 text")?;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed: Result<Vec<f64>, _> =
            line.split(',').map(|v| v.trim().parse::<f64>()).collect();
        match parsed {
            Ok(row) => rows.push(row),
            Err(_) if rows.is_empty() && i == 0 => continue, // a header
            Err(e) => bail!("line {}: {e} in {line:?}", i + 1),
        }
    }
    let d = rows.first().map_or(0, Vec::len);
    if let Some(i) = rows.iter().position(|r| r.len() != d) {
        bail!("row {i} has {} values, the first row {d}", rows[i].len());
    }
    Ok(Tensor::from_vec(rows.concat(), [rows.len(), d]))
}

fn parse_npy(bytes: &[u8]) -> Result<Tensor<f64>> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("no NPY magic");
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
    };
    let header = std::str::from_utf8(bytes.get(start..start + len).context("short header")?)?;
    let field = |key: &str| {
        let at = header
            .find(key)
            .with_context(|| format!("no {key} in the header"))?;
        Ok::<&str, anyhow::Error>(&header[at + key.len()..])
    };
    if field("'fortran_order':")?.trim_start().starts_with("True") {
        bail!("Fortran order is not supported; save with np.ascontiguousarray");
    }
    let descr = field("'descr':")?.trim_start();
    let shape_text = field("'shape':")?;
    let shape_text = &shape_text[shape_text.find('(').context("no shape")? + 1..];
    let shape: Vec<usize> = shape_text[..shape_text.find(')').context("no shape")?]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()?;
    let body = &bytes[start + len..];
    let values: Vec<f64> = if descr.starts_with("'<f8'") {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
            .collect()
    } else if descr.starts_with("'<f4'") {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")) as f64)
            .collect()
    } else {
        bail!(
            "element type {} is not supported; use float32 or float64",
            &descr[..descr.find(',').unwrap_or(descr.len())]
        );
    };
    let numel: usize = shape.iter().product();
    if values.len() != numel {
        bail!(
            "the header's shape {shape:?} needs {numel} values, the file holds {}",
            values.len()
        );
    }
    Ok(Tensor::from_vec(values, shape))
}

/// Writes `x` to `path` by its extension: `.csv` (one row per point, the sample flattened),
/// `.npy` (f64, its shape) or `.png` (a grid of images; `[n, c, h, w]` with c = 1 or 3 and
/// values in [0, 1]). The file appears whole or not at all: it is written to a temporary
/// name beside it and renamed.
pub fn write_points(path: &Path, x: &Tensor<f64>) -> Result<()> {
    let bytes = match extension(path).as_str() {
        "csv" => csv_bytes(x),
        "npy" => npy_bytes(x),
        "png" => png_grid(x)?,
        other => bail!(
            "{}: unknown extension {other:?}; use .csv, .npy or .png",
            path.display()
        ),
    };
    write_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it to `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .context("the output path has no file name")?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

fn csv_bytes(x: &Tensor<f64>) -> Vec<u8> {
    let n = x.dim(0);
    let d = x.numel().checked_div(n).unwrap_or(0);
    let mut out = String::with_capacity(n * d * 12);
    for row in x.data().chunks(d.max(1)) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

fn npy_bytes(x: &Tensor<f64>) -> Vec<u8> {
    let dims: Vec<String> = x.dims().iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so that magic (6) + version (2) + length (2) + header + newline is a
    // multiple of 64, as the format asks.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in x.data() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A grid of `[n, c, h, w]` images, ceil(sqrt n) per row, 1-pixel grey gaps (visible against
/// both black and white backgrounds), as 8-bit PNG.
pub fn png_grid(x: &Tensor<f64>) -> Result<Vec<u8>> {
    let dims = x.dims();
    if dims.len() != 4 || !(dims[1] == 1 || dims[1] == 3) {
        bail!(
            "a .png output needs image samples [n, 1 or 3, h, w], these are {dims:?}; write .csv or .npy"
        );
    }
    let (n, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (width, height) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
    let mut pixels = vec![96u8; width * height * 3];
    let data = x.data();
    for k in 0..n {
        let (gx, gy) = ((k % cols) * (w + 1) + 1, (k / cols) * (h + 1) + 1);
        for i in 0..h {
            for j in 0..w {
                for ch in 0..3 {
                    let v = data[((k * c + ch.min(c - 1)) * h + i) * w + j];
                    pixels[((gy + i) * width + gx + j) * 3 + ch] =
                        (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_and_csv_round_trip() {
        let x = Tensor::<f64>::from_f64s(&[1.5, -2.0, 0.25, 3.0, 1e-3, 7.0], [3, 2]);
        assert_eq!(parse_npy(&npy_bytes(&x)).unwrap().to_f64s(), x.to_f64s());
        let back = parse_csv(&csv_bytes(&x)).unwrap();
        assert_eq!(back.dims(), &[3, 2]);
        assert_eq!(back.to_f64s(), x.to_f64s());
        assert_eq!(parse_csv(b"x,y\n1,2\n").unwrap().to_f64s(), [1.0, 2.0]);
        let img = Tensor::<f64>::zeros([3, 1, 4, 4]);
        assert!(png_grid(&img).is_ok());
    }
}
