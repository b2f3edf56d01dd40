//! Where the training batches come from: a built-in 2-D set of `ebm::data::Toy2d` by name, or
//! a data file (CSV, NPY, IDX, optionally `.gz`) read by `ebm::data::load`.

use anyhow::{Context, Result, bail};
use ebm::data::{Dataset, FileFormat, Toy2d};
use ebm_tensor::Tensor;
use rand::Rng;
use std::path::Path;

/// A source of training batches.
#[derive(Clone, Debug)]
pub enum DataSource {
    /// A built-in 2-D set, drawn fresh at every step.
    Toy2d(Toy2d),
    /// The samples of a file, held in memory; each batch draws rows without replacement.
    File(Dataset),
}

impl DataSource {
    /// The source called `name`: a built-in 2-D set, or a data file (a name that ends as a
    /// data file does: `.csv`, `.npy`, `idx`, each optionally `.gz`).
    ///
    /// # Errors
    /// An unknown name, listing the known sets; a file that cannot be read or holds bad values
    /// (the data layer's error, naming the file, the line or index, and the fix).
    pub fn open(name: &str) -> Result<Self> {
        let path = Path::new(name);
        match name.parse::<Toy2d>() {
            Ok(set) => Ok(DataSource::Toy2d(set)),
            Err(_) if FileFormat::of_path(path).is_ok() => {
                let data = ebm::data::load(path)?;
                if data.is_empty() {
                    bail!("{name}: holds no samples; give a file with at least one row");
                }
                Ok(DataSource::File(data))
            }
            Err(e) if path.exists() => {
                let format = FileFormat::of_path(path).unwrap_err();
                bail!("{e}; or a data file, and {format}")
            }
            Err(e) => Err(anyhow::Error::from(e)).context(
                "--data takes a built-in set or a data file (*.csv, *.npy, *idx*, optionally .gz)",
            ),
        }
    }

    /// A short name for the run directory: the set's, or the file's stem.
    pub fn short_name(&self) -> String {
        match self {
            DataSource::Toy2d(set) => set.name().to_string(),
            DataSource::File(data) => {
                let name = Path::new(data.name()).file_name().unwrap_or_default();
                let name = name.to_string_lossy();
                let stem = name.split('.').next().unwrap_or("data");
                stem.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect()
            }
        }
    }

    /// The number of samples held, for a file; `None` for a set drawn without end.
    pub fn len(&self) -> Option<usize> {
        match self {
            DataSource::Toy2d(_) => None,
            DataSource::File(data) => Some(data.len()),
        }
    }

    /// `n` points, `[n, ...]`.
    ///
    /// # Panics
    /// For a file, when `n` is more than it holds (check the batch size with
    /// [`DataSource::check_batch_size`] first).
    pub fn batch(&self, n: usize, rng: &mut dyn Rng) -> Tensor<f32> {
        match self {
            DataSource::Toy2d(set) => set.sample(n, rng),
            DataSource::File(data) => data.batch(n, rng),
        }
    }

    /// Up to `n` points: all of a smaller file.
    pub fn sample(&self, n: usize, rng: &mut dyn Rng) -> Tensor<f32> {
        self.batch(self.len().map_or(n, |len| len.min(n)), rng)
    }

    /// `Ok(())` when a batch of `batch_size` fits in the data.
    ///
    /// # Errors
    /// Naming the file, its number of samples and the fix.
    pub fn check_batch_size(&self, batch_size: usize) -> Result<()> {
        if let DataSource::File(data) = self
            && data.len() < batch_size
        {
            bail!(
                "{}: holds {} samples, fewer than batch_size {batch_size}; lower --batch-size to at most {}",
                data.name(),
                data.len(),
                data.len()
            );
        }
        Ok(())
    }

    /// `Ok(())` when one sample has the shape `expected` that `model` takes.
    ///
    /// # Errors
    /// The data layer's error for a file (naming it, both shapes and the fix); the same facts
    /// for a built-in set.
    pub fn check_shape(&self, expected: &[usize], model: &str) -> Result<()> {
        match self {
            DataSource::File(data) => Ok(data.check_dim(expected, model)?),
            DataSource::Toy2d(set) if expected != [2] => bail!(
                "{}: samples have shape [2], but {model} takes samples of shape {expected:?}; use data of that shape, or an energy for [2]",
                set.name()
            ),
            DataSource::Toy2d(_) => Ok(()),
        }
    }
}
