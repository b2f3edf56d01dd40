//! Learnable energies on disk: their weights and their spec in one safetensors file, so that a
//! checkpoint rebuilds the model with no other input.

use super::{EnergyModel, EnergySpec, NoiseConditionalModel};
use crate::Error;
use ebm_nn::{ParamStore, RESERVED_PREFIX, StateDict, load_safetensors, read_safetensors};
use ebm_tensor::Float;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;

/// The version of the energy layout in a checkpoint (the metadata keys below) that this crate
/// writes; files of a later version are refused.
pub const ENERGY_FORMAT_VERSION: u32 = 1;

/// What [`load_energy`] returns: the model and the extras saved with it.
pub type LoadedEnergy<T> = (Box<dyn EnergyModel<T>>, StateDict<T>);

/// What [`load_noise_conditional_energy`] returns: the model and the extras saved with it.
pub type LoadedNoiseConditionalEnergy<T> = (Box<dyn NoiseConditionalModel<T>>, StateDict<T>);

/// The metadata key of the spec, as JSON.
const KEY_SPEC: &str = "energy";
/// The metadata key of [`ENERGY_FORMAT_VERSION`].
const KEY_VERSION: &str = "energy_format_version";

/// Writes a learnable energy to `path`: its parameters and buffers, the extra tensors and
/// metadata of `extras` (optimiser state, training config, ...), and its spec, so that
/// [`load_energy`] rebuilds it with no other input.
///
/// The file is safetensors, written by [`ebm_nn::save_safetensors`] (atomically: a crash
/// leaves the old file or the new one). Its metadata holds, besides the caller's and
/// `ebm-nn`'s own keys, `energy` (the [`EnergySpec`] as JSON) and `energy_format_version`
/// ([`ENERGY_FORMAT_VERSION`]).
///
/// # Errors
/// [`Error::InvalidConfig`] when `extras.metadata` uses the key `energy` or
/// `energy_format_version` (this function writes them); the errors of
/// [`ebm_nn::save_safetensors`] (an extra tensor named like a parameter, an unwritable file).
///
/// # Example
/// ```
/// use ebm::energy::{Energy, MlpEnergy, MlpEnergyConfig, load_energy, save_energy};
/// use ebm_nn::StateDict;
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let energy = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 16, 1]), &mut rng)?;
/// let path = std::env::temp_dir().join(format!("ebm-doc-mlp-{}.safetensors", std::process::id()));
/// save_energy(&path, &energy, &StateDict::new())?;
///
/// let (restored, _extras) = load_energy::<f32>(&path)?;
/// let x = Tensor::<f32>::randn([4, 2], &mut rng);
/// assert_eq!(restored.energy(&x).to_f64s(), energy.energy(&x).to_f64s());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), ebm::Error>(())
/// ```
pub fn save_energy<T: Float, M: EnergyModel<T> + ?Sized>(
    path: impl AsRef<Path>,
    model: &M,
    extras: &StateDict<T>,
) -> Result<(), Error> {
    save_parts(path.as_ref(), model.params(), &model.spec(), extras)
}

/// Reads a learnable energy that [`save_energy`] wrote: rebuilds it from the spec in the
/// file's metadata ([`EnergySpec::build`]) and loads its weights.
///
/// Reads the file twice (once for the spec, once for the checked weights): meant for
/// checkpoints, not for a hot loop.
///
/// # Returns
/// The model, and the extras saved with it: the extra tensors, and the caller's metadata
/// (without `energy`, `energy_format_version` and the `ebm_nn.` keys).
///
/// # Errors
/// [`Error::Restore`] when the file has no spec (not written by `save_energy`), a newer
/// format version, a spec that cannot be read, an unknown kind or a noise-conditional one
/// (read it with [`load_noise_conditional_energy`]); [`Error::InvalidConfig`] when the spec's
/// settings are out of range; [`Error::Nn`] when the weights do not match the architecture
/// (every missing, unexpected and mis-shaped tensor named), the file holds another element
/// type, or it cannot be read.
pub fn load_energy<T: Float>(path: impl AsRef<Path>) -> Result<LoadedEnergy<T>, Error> {
    let path = path.as_ref();
    let spec = read_spec::<T>(path)?;
    let mut model = spec
        .build::<T, _>(&mut placeholder_rng())
        .map_err(|e| in_file(e, path))?;
    let extras = load_weights(path, model.params_mut())?;
    Ok((model, extras))
}

/// Writes a learnable noise-conditional energy to `path`, as [`save_energy`] does.
///
/// # Errors
/// As [`save_energy`].
pub fn save_noise_conditional_energy<T: Float, M: NoiseConditionalModel<T> + ?Sized>(
    path: impl AsRef<Path>,
    model: &M,
    extras: &StateDict<T>,
) -> Result<(), Error> {
    save_parts(path.as_ref(), model.params(), &model.spec(), extras)
}

/// Reads a learnable noise-conditional energy that [`save_noise_conditional_energy`] wrote,
/// as [`load_energy`] does ([`EnergySpec::build_noise_conditional`], then the weights).
///
/// # Errors
/// As [`load_energy`]; a spec of a kind that is not noise-conditional is an
/// [`Error::Restore`] that points to [`load_energy`].
pub fn load_noise_conditional_energy<T: Float>(
    path: impl AsRef<Path>,
) -> Result<LoadedNoiseConditionalEnergy<T>, Error> {
    let path = path.as_ref();
    let spec = read_spec::<T>(path)?;
    let mut model = spec
        .build_noise_conditional::<T, _>(&mut placeholder_rng())
        .map_err(|e| in_file(e, path))?;
    let extras = load_weights(path, model.params_mut())?;
    Ok((model, extras))
}

/// The spec of the energy in a checkpoint, without building it: to tell which loader a file
/// needs, or to show its architecture.
///
/// # Errors
/// As the spec part of [`load_energy`]; [`Error::Nn`] when the file cannot be read as
/// tensors of type `T`.
pub fn read_energy_spec<T: Float>(path: impl AsRef<Path>) -> Result<EnergySpec, Error> {
    read_spec::<T>(path.as_ref())
}

fn save_parts<T: Float>(
    path: &Path,
    params: &ParamStore<T>,
    spec: &EnergySpec,
    extras: &StateDict<T>,
) -> Result<(), Error> {
    for key in [KEY_SPEC, KEY_VERSION] {
        if extras.metadata.contains_key(key) {
            return Err(Error::config(
                "checkpoint metadata key",
                key,
                "keys other than `energy` and `energy_format_version`, which the checkpoint writes itself; rename the entry",
            ));
        }
    }
    let mut extras = extras.clone();
    extras.metadata.insert(KEY_SPEC.into(), spec.to_json());
    extras
        .metadata
        .insert(KEY_VERSION.into(), ENERGY_FORMAT_VERSION.to_string());
    ebm_nn::save_safetensors(path, params, &extras)?;
    Ok(())
}

fn read_spec<T: Float>(path: &Path) -> Result<EnergySpec, Error> {
    let file = read_safetensors::<T>(path)?;
    let restore = |reason: String| Error::Restore {
        what: format!("the energy in {}", path.display()),
        reason,
    };
    let Some(json) = file.metadata.get(KEY_SPEC) else {
        return Err(restore(format!(
            "its metadata has no `{KEY_SPEC}` entry, so it was not written by `save_energy`; rebuild the architecture by hand and load the weights with `ebm_nn::load_safetensors`"
        )));
    };
    let version = file.metadata.get(KEY_VERSION);
    match version.and_then(|v| v.parse::<u32>().ok()) {
        Some(v) if v <= ENERGY_FORMAT_VERSION => {}
        Some(v) => {
            return Err(restore(format!(
                "its energy format version is {v}, this ebm reads up to {ENERGY_FORMAT_VERSION}; update ebm"
            )));
        }
        None => {
            let found = version.map_or("missing".to_string(), |v| format!("{v:?}"));
            return Err(restore(format!(
                "its metadata `{KEY_VERSION}` is {found}, expected a number up to {ENERGY_FORMAT_VERSION}; write the file again with `save_energy`"
            )));
        }
    }
    EnergySpec::from_json(json).map_err(|e| in_file(e, path))
}

fn load_weights<T: Float>(path: &Path, store: &mut ParamStore<T>) -> Result<StateDict<T>, Error> {
    let mut extras = load_safetensors(path, store)?;
    extras
        .metadata
        .retain(|k, _| k != KEY_SPEC && k != KEY_VERSION && !k.starts_with(RESERVED_PREFIX));
    Ok(extras)
}

/// The random weights of the fresh model are all overwritten by the file's; any seed will do.
fn placeholder_rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// A restore error, with the file named.
fn in_file(error: Error, path: &Path) -> Error {
    match error {
        Error::Restore { what, reason } => Error::Restore {
            what: format!("{what} in {}", path.display()),
            reason,
        },
        other => other,
    }
}
