//! Where the training batches come from.
//!
//! Today the built-in 2-D sets of `ebm::data::Toy2d`, by name (every set it knows is
//! accepted); data files join here when `ebm::data` reads them.

use anyhow::{Result, bail};
use ebm::data::Toy2d;
use ebm_tensor::Tensor;
use rand::Rng;

/// A source of training batches.
#[derive(Clone, Debug)]
pub enum DataSource {
    /// A built-in 2-D set, drawn fresh at every step.
    Toy2d(Toy2d),
}

impl DataSource {
    /// The source called `name`: a built-in 2-D set.
    ///
    /// # Errors
    /// An unknown name, listing the known sets.
    pub fn open(name: &str) -> Result<Self> {
        match name.parse::<Toy2d>() {
            Ok(set) => Ok(DataSource::Toy2d(set)),
            Err(e) if std::path::Path::new(name).exists() => bail!(
                "{e}; `{name}` is a file, and reading data files is not supported yet: use a built-in set"
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// A short name for the run directory.
    pub fn short_name(&self) -> String {
        match self {
            DataSource::Toy2d(set) => set.name().to_string(),
        }
    }

    /// `n` points, `[n, ...]`.
    pub fn batch(&self, n: usize, rng: &mut dyn Rng) -> Tensor<f32> {
        match self {
            DataSource::Toy2d(set) => set.sample(n, rng),
        }
    }
}
