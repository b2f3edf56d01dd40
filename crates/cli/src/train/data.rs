//! Where the training batches come from: a built-in 2-D set of `ebm::data::Toy2d` by name, a
//! built-in image set (`digits`, `fashion-mnist`), or a data file (CSV, NPY, IDX, optionally
//! `.gz`) read by `ebm::data::load`; and the `data` setting that names one.

use anyhow::{Context, Result, bail};
use ebm::data::{Dataset, FileFormat, ImageTransform, PixelRange, Split, Toy2d};
use ebm_tensor::Tensor;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The built-in image sets, by name.
pub const IMAGE_SETS: [&str; 2] = ["digits", "fashion-mnist"];

/// The `data` setting: a name (a built-in set or a data file) and, for images, how pixels
/// become model inputs.
///
/// In TOML either a plain name, `data = "8gaussians"`, or a table:
///
/// ```toml
/// [data]
/// name = "digits"
/// range = "symmetric"   # or "unit": pixels to [-1, 1] or [0, 1]
/// dequantize = true     # uniform noise of one level on every pixel of every batch
/// ```
///
/// The built-in image sets (`digits`, `fashion-mnist`) default to `symmetric` with
/// dequantisation; a quantised data file (IDX bytes) trains on its raw values unless one of
/// the two options is given, and then takes the same defaults for the other. The resolved
/// config (config.toml) records both, so a resumed run sees the same inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataConfig {
    /// A built-in set or the path of a data file.
    pub name: String,
    /// The range pixels are mapped to (image data only).
    pub range: Option<PixelRange>,
    /// Whether pixels get uniform dequantisation noise (image data only).
    pub dequantize: Option<bool>,
}

/// The table form of [`DataConfig`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataTable {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    range: Option<PixelRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dequantize: Option<bool>,
}

impl DataConfig {
    /// The set or file `name`, with the defaults of its kind.
    pub fn named(name: &str) -> Self {
        DataConfig {
            name: name.to_string(),
            ..DataConfig::default()
        }
    }

    /// Whether a pixel option is set.
    fn has_image_options(&self) -> bool {
        self.range.is_some() || self.dequantize.is_some()
    }

    /// The transform these options ask for, the defaults filled in.
    fn transform(&self) -> ImageTransform {
        ImageTransform {
            range: self.range.unwrap_or_default(),
            dequantize: self.dequantize.unwrap_or(true),
        }
    }
}

impl std::fmt::Display for DataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(range) = self.range {
            let range = match range {
                PixelRange::Unit => "[0, 1]",
                PixelRange::Symmetric => "[-1, 1]",
            };
            write!(f, " in {range}")?;
        }
        match self.dequantize {
            Some(true) => f.write_str(", dequantised"),
            Some(false) => f.write_str(", not dequantised"),
            None => Ok(()),
        }
    }
}

impl Serialize for DataConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.has_image_options() {
            return s.serialize_str(&self.name);
        }
        DataTable {
            name: self.name.clone(),
            range: self.range,
            dequantize: self.dequantize,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for DataConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DataConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a data set name, or a table with `name`, `range` and `dequantize`")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<DataConfig, E> {
                Ok(DataConfig::named(name))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<DataConfig, A::Error> {
                let table =
                    DataTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(DataConfig {
                    name: table.name,
                    range: table.range,
                    dequantize: table.dequantize,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A source of training batches.
#[derive(Clone, Debug)]
pub enum DataSource {
    /// A built-in 2-D set, drawn fresh at every step.
    Toy2d(Toy2d),
    /// A built-in image set (Fashion-MNIST's train split), held in memory; each batch draws
    /// images without replacement.
    Images(Dataset),
    /// The samples of a file, held in memory; each batch draws rows without replacement.
    File(Dataset),
}

impl DataSource {
    /// The source that `config` names, and the setting resolved: a built-in 2-D set, a
    /// built-in image set, or a data file (a name that ends as a data file does: `.csv`,
    /// `.npy`, `idx`, each optionally `.gz`). Image sets get their pixel options' defaults
    /// filled in.
    ///
    /// # Errors
    /// An unknown name, listing the known sets; Fashion-MNIST not installed (naming the
    /// folder and the install command); a file that cannot be read or holds bad values (the
    /// data layer's error, naming the file, the line or index, and the fix); pixel options
    /// for data that are not images.
    pub fn open(config: &DataConfig) -> Result<(Self, DataConfig)> {
        let name = config.name.as_str();
        let path = Path::new(name);
        let mut resolved = config.clone();
        let source = match name.parse::<Toy2d>() {
            Ok(set) => {
                if config.has_image_options() {
                    bail!(
                        "`{name}` is a set of 2-D points, and range and dequantize are pixel options (for digits, fashion-mnist and image files); drop them from [data] (or --pixel-range, --dequantize)"
                    );
                }
                DataSource::Toy2d(set)
            }
            Err(_) if IMAGE_SETS.contains(&name) => {
                let data = match name {
                    "digits" => Dataset::digits(),
                    _ => Dataset::fashion_mnist(Split::Train)?,
                };
                let transform = config.transform();
                resolved.range = Some(transform.range);
                resolved.dequantize = Some(transform.dequantize);
                DataSource::Images(data.with_transform(transform)?)
            }
            Err(_) if FileFormat::of_path(path).is_ok() => {
                let mut data = ebm::data::load(path)?;
                if data.is_empty() {
                    bail!("{name}: holds no samples; give a file with at least one row");
                }
                if config.has_image_options() {
                    let transform = config.transform();
                    resolved.range = Some(transform.range);
                    resolved.dequantize = Some(transform.dequantize);
                    data = data.with_transform(transform)?;
                }
                DataSource::File(data)
            }
            Err(e) if path.exists() => {
                let format = FileFormat::of_path(path).unwrap_err();
                bail!("{e}; or a data file, and {format}")
            }
            Err(e) => {
                return Err(anyhow::Error::from(e)).context(format!(
                    "--data takes a built-in set ({}) or a data file (*.csv, *.npy, *idx*, optionally .gz)",
                    IMAGE_SETS.join(", ")
                ));
            }
        };
        Ok((source, resolved))
    }

    /// The samples held in memory, for a built-in image set or a file.
    fn dataset(&self) -> Option<&Dataset> {
        match self {
            DataSource::Toy2d(_) => None,
            DataSource::Images(data) | DataSource::File(data) => Some(data),
        }
    }

    /// The shape of one sample when the samples are images a PNG can show, `[c, h, w]` with
    /// 1 or 3 channels.
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        match *self.dataset()?.sample_shape() {
            [c, h, w] if c == 1 || c == 3 => Some([c, h, w]),
            _ => None,
        }
    }

    /// The range the model's inputs lie in: that of the pixel transform, `[0, levels - 1]`
    /// for raw quantised data, else the smallest and largest value held; `None` for a 2-D set.
    pub fn value_range(&self) -> Option<(f64, f64)> {
        let data = self.dataset()?;
        Some(match (data.transform(), data.levels()) {
            (Some(t), _) => t.range.bounds(),
            (None, Some(levels)) => (0.0, f64::from(levels.max(2) - 1)),
            (None, None) => {
                let v = data.data().data();
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (lo, hi)
            }
        })
    }

    /// A short name for the run directory: the set's, or the file's stem.
    pub fn short_name(&self) -> String {
        match self {
            DataSource::Toy2d(set) => set.name().to_string(),
            DataSource::Images(data) => data.name().split('/').next().unwrap_or("images").into(),
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
        self.dataset().map(Dataset::len)
    }

    /// `n` points, `[n, ...]`.
    ///
    /// # Panics
    /// For a file, when `n` is more than it holds (check the batch size with
    /// [`DataSource::check_batch_size`] first).
    pub fn batch(&self, n: usize, rng: &mut dyn Rng) -> Tensor<f32> {
        match self {
            DataSource::Toy2d(set) => set.sample(n, rng),
            DataSource::Images(data) | DataSource::File(data) => data.batch(n, rng),
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
        if let Some(data) = self.dataset()
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
            DataSource::Images(data) | DataSource::File(data) => {
                Ok(data.check_dim(expected, model)?)
            }
            DataSource::Toy2d(set) if expected != [2] => bail!(
                "{}: samples have shape [2], but {model} takes samples of shape {expected:?}; use data of that shape, or an energy for [2]",
                set.name()
            ),
            DataSource::Toy2d(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data` in a TOML document of its own.
    #[derive(Debug, Deserialize, Serialize)]
    struct Doc {
        data: DataConfig,
    }

    fn parse(text: &str) -> Result<DataConfig, toml::de::Error> {
        toml::from_str::<Doc>(text).map(|d| d.data)
    }

    #[test]
    fn a_name_and_a_table_both_read_and_write_back() {
        assert_eq!(
            parse("data = \"moons\"").unwrap(),
            DataConfig::named("moons")
        );
        let table = parse("[data]\nname = \"digits\"\nrange = \"unit\"\ndequantize = false\n");
        let table = table.unwrap();
        assert_eq!(table.range, Some(PixelRange::Unit));
        assert_eq!(table.dequantize, Some(false));

        // Without pixel options it stays a plain name (the form older runs hold).
        let text = toml::to_string(&Doc {
            data: DataConfig::named("moons"),
        })
        .unwrap();
        assert_eq!(text.trim(), "data = \"moons\"");
        let text = toml::to_string(&Doc {
            data: table.clone(),
        })
        .unwrap();
        assert_eq!(parse(&text).unwrap(), table, "{text}");
    }

    #[test]
    fn unknown_fields_and_values_are_named() {
        let err = parse("[data]\nname = \"digits\"\nrange = \"wide\"\n").unwrap_err();
        assert!(err.to_string().contains("wide"), "{err}");
        let err = parse("[data]\nname = \"digits\"\ndequantise = true\n").unwrap_err();
        assert!(err.to_string().contains("dequantise"), "{err}");
    }

    #[test]
    fn image_sets_take_their_defaults_and_points_refuse_pixel_options() {
        let (source, resolved) = DataSource::open(&DataConfig::named("digits")).unwrap();
        assert_eq!(resolved.range, Some(PixelRange::Symmetric));
        assert_eq!(resolved.dequantize, Some(true));
        assert_eq!(source.image_shape(), Some([1, 8, 8]));
        assert_eq!(source.value_range(), Some((-1.0, 1.0)));

        let points = DataConfig {
            range: Some(PixelRange::Unit),
            ..DataConfig::named("8gaussians")
        };
        let err = DataSource::open(&points).unwrap_err().to_string();
        assert!(err.contains("8gaussians") && err.contains("pixel"), "{err}");
    }
}
