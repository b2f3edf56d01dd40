//! Loading a checkpoint for `ebm sample`, `eval` and `energy`: its element type, its model
//! (plain or noise-conditional) and the shape of one sample it takes.

use crate::train::TrainConfig;
use anyhow::{Context, Result, bail};
use ebm::data::PixelRange;
use ebm::energy::{
    AtNoiseLevel, Energy, EnergyModel, EnergySpec, NoiseConditionalModel, load_energy,
    load_noise_conditional_energy, read_energy_spec,
};
use ebm::objective::multiscale::MultiScaleDenoisingScoreMatchingConfig;
use ebm_tensor::{Float, Tensor};
use std::path::{Path, PathBuf};

/// The settings of the run a checkpoint sits in, from the `config.toml` that `ebm train`
/// wrote beside it: what `ebm eval` and `ebm sample` take as their defaults.
pub struct RunSettings {
    /// That config.toml.
    pub path: PathBuf,
    /// The pixel range the run trained in (image data).
    pub pixel_range: Option<PixelRange>,
    /// Whether the run dequantised its pixels (image data).
    pub dequantize: Option<bool>,
    /// The noise levels of a noise-conditional (`ncsn`) run.
    pub noise_levels: Option<MultiScaleDenoisingScoreMatchingConfig>,
}

/// The settings of the run `checkpoint` sits in; `None` when its directory holds no
/// config.toml. One that does not parse (say, from another version) is named on stderr and
/// skipped, so the flags still work.
pub fn run_settings(checkpoint: &Path) -> Option<RunSettings> {
    let path = checkpoint.parent()?.join("config.toml");
    if !path.is_file() {
        return None;
    }
    let config = match TrainConfig::from_file(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("warning: {e:#}; its settings are not used, give them as flags");
            return None;
        }
    };
    let noise_levels = (config.method.name == "ncsn")
        .then(|| {
            let table = serde_json::Value::Object(config.method.config.clone());
            serde_json::from_value::<MultiScaleDenoisingScoreMatchingConfig>(table).ok()
        })
        .flatten();
    Some(RunSettings {
        path,
        pixel_range: config.data.range,
        dequantize: config.data.dequantize,
        noise_levels,
    })
}

/// The element type of the tensors in a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

/// A loaded energy.
pub enum Model<T: Float> {
    /// E(x).
    Plain(Box<dyn EnergyModel<T>>),
    /// E(x, sigma).
    NoiseConditional(Box<dyn NoiseConditionalModel<T>>),
}

/// A checkpoint's model, with what the commands need to know about it.
pub struct Loaded<T: Float> {
    pub model: Model<T>,
    /// The shape of one sample, `[d]` or `[c, h, w]`.
    pub sample_shape: Vec<usize>,
    /// The spec kind, such as `mlp`.
    pub kind: String,
    pub path: PathBuf,
}

impl<T: Float> Loaded<T> {
    /// The values per sample.
    pub fn dim(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// The energy as a plain E(x): a noise-conditional model at noise level `sigma`.
    pub fn energy(&self, sigma: f64) -> Box<dyn Energy<T> + '_> {
        match &self.model {
            Model::Plain(m) => Box::new(PlainRef(&**m)),
            Model::NoiseConditional(m) => Box::new(AtNoiseLevel::new(&**m, sigma)),
        }
    }

    /// `x` (`[n, ...]`, any layout with `dim` values per row) as a batch of this model's
    /// samples, `[n, sample_shape...]`, or an error naming `source` and the fix.
    pub fn batch(&self, x: &Tensor<f64>, source: &str) -> Result<Tensor<T>> {
        let n = x.dim(0);
        let per_row = x.numel().checked_div(n).unwrap_or(0);
        if per_row != self.dim() {
            bail!(
                "{source} has {per_row} values per point, but the energy in {} ({}) takes \
                 samples of shape {:?} ({} values); pass data of that dimension or the matching \
                 checkpoint",
                self.path.display(),
                self.kind,
                self.sample_shape,
                self.dim()
            );
        }
        let mut dims = vec![n];
        dims.extend_from_slice(&self.sample_shape);
        Ok(Tensor::from_f64s(&x.to_f64s(), dims))
    }
}

/// A `&dyn EnergyModel` as an `Energy` of its own (a trait object cannot be upcast here).
struct PlainRef<'a, T: Float>(&'a dyn EnergyModel<T>);

impl<T: Float> Energy<T> for PlainRef<'_, T> {
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        self.0.energy(x)
    }

    fn energy_and_grad(
        &self,
        x: &Tensor<T>,
        create_graph: bool,
    ) -> Result<(Tensor<T>, Tensor<T>), ebm::Error> {
        self.0.energy_and_grad(x, create_graph)
    }
}

/// The element type recorded in the checkpoint's safetensors header.
pub fn dtype(path: &Path) -> Result<Dtype> {
    let fix = "pass the checkpoint.safetensors that `ebm train` or `save_energy` wrote";
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}; {fix}", path.display()))?;
    let header = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .and_then(|len| bytes.get(8..8 + len))
        .with_context(|| format!("{} is not a safetensors file; {fix}", path.display()))?;
    let json: serde_json::Value = serde_json::from_slice(header)
        .with_context(|| format!("{} has a corrupt safetensors header; {fix}", path.display()))?;
    match json["__metadata__"]["ebm_nn.dtype"].as_str() {
        Some("f32") => Ok(Dtype::F32),
        Some("f64") => Ok(Dtype::F64),
        other => bail!(
            "{} records no ebm element type (ebm_nn.dtype is {other:?}); {fix}",
            path.display()
        ),
    }
}

/// The model in `path`, plain or noise-conditional by its spec.
pub fn load<T: Float>(path: &Path) -> Result<Loaded<T>> {
    let spec = read_energy_spec::<T>(path)
        .with_context(|| format!("cannot read the energy in {}", path.display()))?;
    let sample_shape = sample_shape(&spec)
        .with_context(|| format!("the energy in {} ({})", path.display(), spec.kind))?;
    let model = if EnergySpec::NOISE_CONDITIONAL_KINDS.contains(&spec.kind.as_str()) {
        Model::NoiseConditional(load_noise_conditional_energy::<T>(path)?.0)
    } else {
        Model::Plain(load_energy::<T>(path)?.0)
    };
    Ok(Loaded {
        model,
        sample_shape,
        kind: spec.kind,
        path: path.to_path_buf(),
    })
}

/// The shape of one sample that an energy of this spec takes.
pub(crate) fn sample_shape(spec: &EnergySpec) -> Result<Vec<usize>> {
    let get = |key: &str| {
        spec.config
            .get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .with_context(|| format!("its spec has no integer `{key}`"))
    };
    Ok(match spec.kind.as_str() {
        "mlp" | "ncsn-mlp" => {
            let first = spec.config.get("widths").and_then(|w| w.get(0));
            vec![
                first
                    .and_then(|v| v.as_u64())
                    .context("its spec has no `widths`")? as usize,
            ]
        }
        "conv" | "ncsn-conv" => vec![get("in_channels")?, get("height")?, get("width")?],
        "rbm" | "gaussian-rbm" => vec![get("n_visible")?],
        _ => vec![get("dim")?],
    })
}
