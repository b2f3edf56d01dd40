//! Loading data files: CSV, NPY and IDX, each optionally gzip-compressed (`.gz`).
//!
//! [`load`] picks the format from the file name and returns a [`Dataset`] of `f64` values,
//! batch-first: the first axis counts samples. A 1-D array `[n]` becomes `[n, 1]`, and a 3-D
//! one `[n, h, w]` (grey images, such as MNIST) becomes `[n, 1, h, w]`; other ranks are kept.
//!
//! Formats, chosen by the file name:
//! * CSV (`*.csv`): numbers separated by commas, one sample per line. The first line is a
//!   header (and skipped) when none of its fields is a number; blank lines and lines starting
//!   with `#` are skipped. No quoting, no other separators.
//! * NPY (`*.npy`): NumPy's own format, versions 1.0, 2.0 and 3.0. Element types `f4`, `f8`,
//!   `u1`, `i1`, `u2`, `i2`, `u4`, `i4`, `u8`, `i8` and `b1`, little-endian (or one byte);
//!   C order only. No structured, object, complex or half-precision arrays; 64-bit integers
//!   above 2^53 lose precision.
//! * IDX (names containing `idx`, such as `train-images-idx3-ubyte` or `*.idx`): the MNIST
//!   format, a big-endian header and big-endian values of type ubyte, byte, short, int,
//!   float or double.
//!
//! Byte data (`u1`, `ubyte`) are marked as quantised with 256 levels, so that an
//! [`super::ImageTransform`] can scale them; other types are continuous.
//!
//! Everything is checked before a value is used, and an error ([`Error::Data`]) names the
//! file, the place (`line 3, column 2` for CSV, `flat index 17` for NPY and IDX: the
//! position in the row-major data), the problem and the fix: missing or unreadable files,
//! empty files, truncated files, ragged CSV rows, text where a number should be, NaN or
//! infinite values, unsupported types and Fortran-ordered arrays.

mod csv;
mod idx;
mod npy;

use super::Dataset;
use crate::Error;
use std::io::Read;
use std::path::Path;

/// A file format that [`load`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileFormat {
    /// Comma-separated numbers.
    Csv,
    /// NumPy `.npy`.
    Npy,
    /// The IDX format of MNIST.
    Idx,
}

impl FileFormat {
    /// The format of `path`, from its name, and whether it is gzip-compressed (`.gz`).
    ///
    /// # Errors
    /// [`Error::Data`] when the name matches no format.
    pub fn of_path(path: &Path) -> Result<(FileFormat, bool), Error> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
        let name = name.unwrap_or_default();
        let (stem, gz) = match name.strip_suffix(".gz") {
            Some(stem) => (stem, true),
            None => (name.as_str(), false),
        };
        let format = if stem.ends_with(".csv") {
            FileFormat::Csv
        } else if stem.ends_with(".npy") {
            FileFormat::Npy
        } else if stem.contains("idx") {
            FileFormat::Idx
        } else {
            let problem = "the name matches no known data format";
            let fix = "name the file *.csv, *.npy or *-idxN-TYPE / *.idx (optionally + .gz)";
            return Err(Error::data(path.display(), "file name", problem, fix));
        };
        Ok((format, gz))
    }
}

/// An array read from a file: shape, values in row-major order, and the number of levels
/// when the values are quantised.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Array {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    pub levels: Option<u32>,
}

/// Loads a CSV, NPY or IDX file (optionally `.gz`) as a data set named after the file.
///
/// # Shapes
/// `[n, d]` for tables and 2-D arrays, `[n, 1]` for 1-D arrays, `[n, 1, h, w]` for 3-D
/// arrays (grey images), other ranks as stored.
///
/// # Errors
/// [`Error::Data`] naming the file, the line or flat index, the problem and the fix (see the
/// [module docs](self)).
///
/// # Example
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("points.csv");
/// # std::fs::write(&path, "x,y\n0.5,1\n-2,3e-1\n").unwrap();
/// let data = ebm::data::load(&path)?;
/// assert_eq!(data.data().dims(), &[2, 2]);
/// assert_eq!(data.data().data(), &[0.5, 1.0, -2.0, 0.3]);
/// # Ok::<(), ebm::Error>(())
/// ```
pub fn load(path: &Path) -> Result<Dataset, Error> {
    let array = read_array(path)?;
    into_dataset(path.display().to_string(), array, None)
}

/// Reads any supported file into an [`Array`] (no reshaping).
pub(crate) fn read_array(path: &Path) -> Result<Array, Error> {
    let (format, gz) = FileFormat::of_path(path)?;
    let bytes = read_bytes(path, gz)?;
    let file = path.display();
    match format {
        FileFormat::Csv => csv::parse_csv(&file, &bytes),
        FileFormat::Npy => npy::parse_npy(&file, &bytes),
        FileFormat::Idx => idx::parse_idx(&file, &bytes),
    }
}

/// The bytes of `path`, decompressed when `gz`.
pub(crate) fn read_bytes(path: &Path, gz: bool) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        let fix = "check the path (and that the file is readable)";
        Error::data(path.display(), "file", format!("cannot be read: {e}"), fix)
    })?;
    if gz {
        gunzip(&path.display(), &bytes)
    } else {
        Ok(bytes)
    }
}

/// Decompresses a gzip stream; `file` names it in errors.
pub(crate) fn gunzip(file: &dyn std::fmt::Display, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| {
            let problem = format!("the gzip stream is truncated or corrupt ({e})");
            Error::data(
                file,
                "gzip data",
                problem,
                "download or copy the file again",
            )
        })?;
    Ok(out)
}

/// `Ok(())` when every value is finite, else an error at the first flat index that is not.
pub(crate) fn check_finite(file: &dyn std::fmt::Display, values: &[f64]) -> Result<(), Error> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => {
            let problem = format!("the value is {}", values[i]);
            let fix = "remove or repair the samples with non-finite values before loading";
            Err(Error::data(file, format!("flat index {i}"), problem, fix))
        }
    }
}

/// An error for a file that holds no samples.
pub(crate) fn empty(file: &dyn std::fmt::Display, what: &str) -> Error {
    let fix = "check that the file was written completely and holds at least one sample";
    Error::data(file, "whole file", format!("no samples ({what})"), fix)
}

/// The array as a batch-first data set: `[n]` -> `[n, 1]`, `[n, h, w]` -> `[n, 1, h, w]`.
pub(crate) fn into_dataset(
    name: String,
    array: Array,
    labels: Option<Vec<u32>>,
) -> Result<Dataset, Error> {
    let mut shape = array.shape;
    match shape.len() {
        0 => {
            let problem = "a 0-dimensional array (one number) has no sample axis";
            return Err(Error::data(
                &name,
                "shape",
                problem,
                "save an array of shape [n, d]",
            ));
        }
        1 => shape.push(1),
        3 => shape.insert(1, 1),
        _ => {}
    }
    if shape[0] == 0 {
        return Err(empty(&name, &format!("shape {shape:?}")));
    }
    let data = ebm_tensor::Tensor::from_vec(array.values, shape);
    Dataset::new(name, data, labels, array.levels)
}

/// Parses CSV bytes (for the embedded digits); `file` names them in errors.
pub(crate) fn parse_csv_bytes(file: &dyn std::fmt::Display, bytes: &[u8]) -> Result<Array, Error> {
    csv::parse_csv(file, bytes)
}
