//! A store and extra named tensors as one safetensors file.

use super::atomic::write_atomically;
use crate::error::ShapeProblem;
use crate::store::validate_name;
use crate::{MismatchReport, NnError, ParamStore, StateDict};
use ebm_tensor::{DType, Float, Tensor};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The version of the layout this crate writes (the reserved metadata keys below); files of a
/// later version are refused.
pub const FORMAT_VERSION: u32 = 1;

/// Metadata keys that this crate writes and reads; keys with this prefix in the caller's
/// metadata are replaced on save.
pub const RESERVED_PREFIX: &str = "ebm_nn.";

const KEY_FORMAT: &str = "ebm_nn.format";
const KEY_VERSION: &str = "ebm_nn.format_version";
const KEY_DTYPE: &str = "ebm_nn.dtype";
const KEY_EXTRA: &str = "ebm_nn.extra_tensors";

/// Writes every tensor of `store` (parameters and buffers) and of `extras` to `path` as
/// safetensors, atomically.
///
/// The file's metadata holds `extras.metadata` (the caller's: architecture, config, ...) and
/// the reserved keys `ebm_nn.format` (`"ebm-nn"`), `ebm_nn.format_version`
/// ([`FORMAT_VERSION`]), `ebm_nn.dtype` (`"f32"` or `"f64"`) and `ebm_nn.extra_tensors` (the
/// names of the extra tensors, as a JSON array, so that loading tells them from missing
/// weights). Values are written bit for bit, little-endian.
///
/// The bytes go to a temporary file in the same directory, which is flushed to disk (fsync)
/// and then renamed over `path`: a crash leaves the old file or the new one, never half of
/// one, and a failed write removes the temporary file.
///
/// # Errors
/// [`NnError::DuplicateName`] when an extra tensor has the name of a stored one,
/// [`NnError::InvalidName`] for an extra name that cannot be saved, [`NnError::Io`] when the
/// file cannot be written, [`NnError::Format`] when the header cannot be encoded.
///
/// # Example
/// ```
/// use ebm_nn::{ParamStore, StateDict, load_safetensors, save_safetensors};
/// use ebm_tensor::Tensor;
///
/// let path = std::env::temp_dir().join(format!("ebm-nn-doc-{}.safetensors", std::process::id()));
/// let mut store = ParamStore::<f32>::new();
/// store.insert("w", Tensor::from_f64s(&[1.0, 2.0], [2])).unwrap();
/// let mut extras = StateDict::new();
/// extras.metadata.insert("architecture".into(), "toy".into());
/// save_safetensors(&path, &store, &extras).unwrap();
///
/// store.set("w", Tensor::zeros([2])).unwrap();
/// let loaded = load_safetensors(&path, &mut store).unwrap();
/// assert_eq!(store.expect("w").to_f64s(), vec![1.0, 2.0]);
/// assert_eq!(loaded.metadata["architecture"], "toy");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn save_safetensors<T: Float>(
    path: impl AsRef<Path>,
    store: &ParamStore<T>,
    extras: &StateDict<T>,
) -> Result<(), NnError> {
    let path = path.as_ref();
    for name in extras.tensors.keys() {
        validate_name(name)?;
        if store.contains(name) {
            return Err(NnError::DuplicateName { name: name.clone() });
        }
    }

    let mut metadata: HashMap<String, String> = extras
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let extra_names: Vec<&String> = extras.tensors.keys().collect();
    let extra_json = serde_json::to_string(&extra_names).expect("strings serialise");
    metadata.insert(KEY_FORMAT.into(), "ebm-nn".into());
    metadata.insert(KEY_VERSION.into(), FORMAT_VERSION.to_string());
    metadata.insert(KEY_DTYPE.into(), T::DTYPE.name().into());
    metadata.insert(KEY_EXTRA.into(), extra_json);

    let stored = store.iter_all().map(|(name, _, t)| (name, t));
    let views: Vec<(&str, Raw)> = stored
        .chain(extras.tensors.iter().map(|(n, t)| (n.as_str(), t)))
        .map(|(name, t)| (name, Raw::of(t)))
        .collect();
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|source| NnError::Format {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomically(path, &bytes)
}

/// Reads the weights in `path` into `store`, checking them first: every tensor of the store
/// (parameters and buffers) must be in the file with the same shape and element type, and the
/// file may hold no other tensors besides those saved as extras. Nothing is changed on error.
/// Loaded parameters are leaves that require grad; buffers are leaves without.
///
/// # Returns
/// The extras saved with the weights (optimiser and EMA state, ...) and the file's metadata,
/// reserved keys included.
///
/// # Errors
/// [`NnError::Mismatch`] listing every missing, unexpected and mis-shaped tensor, with the
/// expected and found shapes; [`NnError::DTypeMismatch`] when the file holds another element
/// type (no silent conversion: read it with [`read_safetensors`] of that type and `cast`);
/// [`NnError::Io`] when the file cannot be read; [`NnError::Format`] when it is not
/// safetensors; [`NnError::InvalidConfig`] for a newer format version or unreadable reserved
/// metadata.
pub fn load_safetensors<T: Float>(
    path: impl AsRef<Path>,
    store: &mut ParamStore<T>,
) -> Result<StateDict<T>, NnError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let file = parse(path, &bytes)?;
    let extra = extra_names(&file.metadata)?;

    let mut report = MismatchReport {
        source: format!("the tensors in {} and the store", path.display()),
        hint: "build the store with the architecture that wrote the file (the same layer names and sizes, as recorded in its metadata), or inspect the file with `read_safetensors`".into(),
        ..MismatchReport::default()
    };
    let mut wanted = Vec::new();
    for (name, _, t) in store.iter_all() {
        match file.tensors.tensor(name) {
            Err(_) => report.missing.push((name.to_string(), t.dims().to_vec())),
            Ok(view) if view.shape() != t.dims() => report.wrong_shape.push(ShapeProblem {
                name: name.to_string(),
                expected: t.dims().to_vec(),
                found: view.shape().to_vec(),
            }),
            Ok(_) => wanted.push(name.to_string()),
        }
    }
    for (name, view) in file.tensors.iter() {
        if !store.contains(name) && !extra.contains(name) {
            report
                .unexpected
                .push((name.to_string(), view.shape().to_vec()));
        }
    }
    report.into_result()?;

    // Decode everything before changing the store.
    let mut values = Vec::with_capacity(wanted.len());
    for name in wanted {
        let t = decode::<T>(path, &name, &file.tensors)?;
        values.push((name, t));
    }
    let mut extras = StateDict::new();
    for name in &extra {
        if file.tensors.tensor(name).is_ok() {
            let t = decode::<T>(path, name, &file.tensors)?;
            extras.tensors.insert(name.clone(), t);
        }
    }
    for (name, t) in values {
        store.set(&name, t).expect("names and shapes checked");
    }
    extras.metadata = file.metadata;
    Ok(extras)
}

/// Every tensor in a safetensors file, by name, with the file's metadata; for inspecting a
/// file or loading one that another program wrote.
///
/// # Errors
/// [`NnError::DTypeMismatch`] when a tensor is not of element type `T`; [`NnError::Io`],
/// [`NnError::Format`] and [`NnError::InvalidConfig`] as [`load_safetensors`].
pub fn read_safetensors<T: Float>(path: impl AsRef<Path>) -> Result<StateDict<T>, NnError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let file = parse(path, &bytes)?;
    let mut out = StateDict::new();
    for name in file.tensors.names() {
        out.tensors
            .insert(name.to_string(), decode::<T>(path, name, &file.tensors)?);
    }
    out.metadata = file.metadata;
    Ok(out)
}

struct Parsed<'a> {
    tensors: SafeTensors<'a>,
    metadata: BTreeMap<String, String>,
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Parsed<'a>, NnError> {
    let format = |source| NnError::Format {
        path: path.to_path_buf(),
        source,
    };
    let tensors = SafeTensors::deserialize(bytes).map_err(format)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(format)?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(v) = metadata.get(KEY_VERSION)
        && v.parse::<u32>().map_or(true, |v| v > FORMAT_VERSION)
    {
        return Err(NnError::config(
            &format!("format version of {}", path.display()),
            v,
            &format!("at most {FORMAT_VERSION}: the file was written by a newer ebm; update"),
        ));
    }
    Ok(Parsed { tensors, metadata })
}

fn extra_names(metadata: &BTreeMap<String, String>) -> Result<BTreeSet<String>, NnError> {
    let Some(json) = metadata.get(KEY_EXTRA) else {
        return Ok(BTreeSet::new());
    };
    serde_json::from_str(json).map_err(|_| {
        NnError::config(
            &format!("metadata `{KEY_EXTRA}`"),
            json,
            "a JSON array of tensor names",
        )
    })
}

fn decode<T: Float>(
    path: &Path,
    name: &str,
    tensors: &SafeTensors<'_>,
) -> Result<Tensor<T>, NnError> {
    let view = tensors.tensor(name).expect("the caller checked the name");
    let bytes = view.data();
    let data: Vec<T> = match (view.dtype(), T::DTYPE) {
        (Dtype::F32, DType::F32) => bytes
            .chunks_exact(4)
            .map(|b| T::of(f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64))
            .collect(),
        (Dtype::F64, DType::F64) => bytes
            .chunks_exact(8)
            .map(|b| T::of(f64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .collect(),
        (found, expected) => {
            return Err(NnError::DTypeMismatch {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: expected.name().to_string(),
                found: format!("{found:?}").to_lowercase(),
            });
        }
    };
    Ok(Tensor::from_vec(data, view.shape()))
}

/// A tensor's bytes in the file's layout: little-endian, row-major.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Raw {
    fn of<T: Float>(t: &Tensor<T>) -> Raw {
        let (dtype, bytes) = match T::DTYPE {
            DType::F32 => (
                Dtype::F32,
                t.data()
                    .iter()
                    .flat_map(|v| (v.f64() as f32).to_le_bytes())
                    .collect(),
            ),
            DType::F64 => (
                Dtype::F64,
                t.data()
                    .iter()
                    .flat_map(|v| v.f64().to_le_bytes())
                    .collect(),
            ),
        };
        Raw {
            dtype,
            shape: t.dims().to_vec(),
            bytes,
        }
    }
}

impl View for Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}
