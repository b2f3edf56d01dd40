//! The two built-in image sets: the 8 x 8 UCI digits (embedded) and Fashion-MNIST (from the
//! Debian package `dataset-fashion-mnist`).

use super::Dataset;
use super::files::{self, Array, into_dataset};
use crate::Error;
use std::path::{Path, PathBuf};

/// The digits file, embedded (see `crates/ebm/data/README.md` for its source and licence).
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Where the Debian package `dataset-fashion-mnist` puts its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The part of a data set that comes with a fixed train/test division.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training part (60,000 images for Fashion-MNIST).
    Train,
    /// The test part (10,000 images for Fashion-MNIST).
    Test,
}

impl Dataset {
    /// The 8 x 8 hand-written digits of UCI (Alpaydin & Kaynak 1998, CC BY 4.0): 1797 grey
    /// images `[1797, 1, 8, 8]` with pixel counts in `0..=16` (17 levels), labels 0-9.
    /// Embedded in the library, so it needs no file; the set has no fixed train/test
    /// division (use [`Dataset::split`]).
    ///
    /// # Example
    /// ```
    /// let digits = ebm::data::Dataset::digits();
    /// assert_eq!(digits.data().dims(), &[1797, 1, 8, 8]);
    /// assert_eq!(digits.levels(), Some(17));
    /// ```
    pub fn digits() -> Dataset {
        let bytes = files::gunzip(&"digits (embedded)", DIGITS_CSV_GZ);
        let table = bytes.and_then(|b| files::parse_csv_bytes(&"digits (embedded)", &b));
        let table = table.expect("the embedded digits file is valid");

        // 64 pixels, then the label, per line.
        let width = table.shape[1];
        let n = table.shape[0];
        let mut values = Vec::with_capacity(n * 64);
        let mut labels = Vec::with_capacity(n);
        for row in table.values.chunks_exact(width) {
            values.extend_from_slice(&row[..64]);
            labels.push(row[64] as u32);
        }
        let array = Array {
            shape: vec![n, 8, 8],
            values,
            levels: Some(17),
        };
        into_dataset("digits".into(), array, Some(labels)).expect("the embedded digits are valid")
    }

    /// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT licence): 28 x 28 grey images of
    /// clothes `[n, 1, 28, 28]`, pixel counts in `0..=255` (256 levels), labels 0-9, read from
    /// [`FASHION_MNIST_DIR`], where `sudo apt-get install dataset-fashion-mnist` puts it.
    ///
    /// # Errors
    /// [`Error::Data`] when the files are missing (the message gives the install command) or
    /// damaged.
    pub fn fashion_mnist(split: Split) -> Result<Dataset, Error> {
        Dataset::fashion_mnist_in(Path::new(FASHION_MNIST_DIR), split)
    }

    /// Fashion-MNIST from the folder `dir`, which holds the files `train-images-idx3-ubyte`,
    /// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each
    /// gzip-compressed (`.gz`, as distributed) or not.
    ///
    /// # Errors
    /// [`Error::Data`] when a file is missing, damaged, or the labels do not match the
    /// images.
    pub fn fashion_mnist_in(dir: &Path, split: Split) -> Result<Dataset, Error> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let images = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;

        // Labels: one byte per image, 0-9.
        let label_array = files::read_array(&labels)?;
        let labels_ok = label_array.shape.len() == 1 && label_array.levels == Some(256);
        if !labels_ok || label_array.values.iter().any(|&v| v > 9.0) {
            let problem = "not a list of bytes 0-9".to_string();
            let fix = "reinstall the set: sudo apt-get install --reinstall dataset-fashion-mnist";
            return Err(Error::data(labels.display(), "whole file", problem, fix));
        }
        let label_values = label_array.values.iter().map(|&v| v as u32).collect();

        let image_array = files::read_array(&images)?;
        let name = format!("fashion-mnist/{prefix}");
        let dataset = into_dataset(name, image_array, Some(label_values)).map_err(|e| match e {
            Error::Data {
                location,
                problem,
                fix,
                ..
            } => Error::data(images.display(), location, problem, fix),
            other => other,
        })?;
        dataset.check_dim(&[1, 28, 28], "Fashion-MNIST")?;
        Ok(dataset)
    }
}

/// `dir/name.gz` or `dir/name`, whichever exists; else the error with the install command.
fn find(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    [&gz, &plain]
        .into_iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let problem = "Fashion-MNIST is not there (no such file)";
            let fix = "install it with `sudo apt-get install dataset-fashion-mnist` (Debian, \
                       Ubuntu), or put the four IDX files of \
                       github.com/zalandoresearch/fashion-mnist in that folder";
            Error::data(gz.display(), "file", problem, fix)
        })
}
