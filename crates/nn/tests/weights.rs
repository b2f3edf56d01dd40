//! Weights on disk: bit-exact round trips, every load error, and atomic writes.

use ebm_nn::{
    Activation, Mlp, MlpConfig, NnError, ParamStore, SpectralNormConfig, StateDict,
    load_safetensors, read_safetensors, save_safetensors,
};
use ebm_tensor::{Float, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "ebm-nn-weights-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn model<T: Float>(seed: u64) -> (ParamStore<T>, Mlp) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let config = MlpConfig {
        spectral_norm: Some(SpectralNormConfig::default()),
        ..MlpConfig::new(&[3, 5, 2], Activation::Silu)
    };
    let mlp = Mlp::from_config(&mut store, "energy", &config, &mut rng).unwrap();
    (store, mlp)
}

fn bits<T: Float>(t: &Tensor<T>) -> Vec<u64> {
    t.data().iter().map(|v| v.f64().to_bits()).collect()
}

fn assert_same<T: Float>(a: &ParamStore<T>, b: &ParamStore<T>) {
    let names_a: Vec<_> = a.iter_all().map(|(n, k, _)| (n, k)).collect();
    let names_b: Vec<_> = b.iter_all().map(|(n, k, _)| (n, k)).collect();
    assert_eq!(names_a, names_b);
    for (name, _, t) in a.iter_all() {
        let u = b.expect(name);
        assert_eq!(t.dims(), u.dims(), "{name}");
        assert_eq!(bits(t), bits(u), "{name}");
        assert_eq!(t.requires_grad(), u.requires_grad(), "{name}");
        assert!(!u.has_grad_fn(), "{name}");
    }
}

fn round_trip<T: Float>() {
    let dir = TempDir::new();
    let path = dir.path("model.safetensors");
    let (mut saved, _) = model::<T>(1);
    // Values that a lossy path would change: signed zero, subnormal, extremes, infinity.
    let special = [-0.0, 1e-40, f64::from(f32::MAX), -f64::INFINITY, 1.0 / 3.0];
    saved
        .set("energy.1.bias", Tensor::from_f64s(&special[..2], [2]))
        .unwrap();
    saved
        .set(
            "energy.0.bias",
            Tensor::from_f64s(&[special[2], special[3], special[4], 0.5, 7.0], [5]),
        )
        .unwrap();
    let mut extras = StateDict::new();
    extras
        .tensors
        .insert("optim.exp_avg.x".into(), Tensor::<T>::full([2, 2], 0.25));
    extras
        .metadata
        .insert("config".into(), "{\"widths\":[3,5,2]}".into());
    save_safetensors(&path, &saved, &extras).unwrap();

    let (mut loaded, _) = model::<T>(2);
    let got = load_safetensors(&path, &mut loaded).unwrap();
    assert_same(&saved, &loaded);
    assert_eq!(
        bits(&got.tensors["optim.exp_avg.x"]),
        bits(&extras.tensors["optim.exp_avg.x"])
    );
    assert_eq!(got.metadata["config"], extras.metadata["config"]);
    assert_eq!(got.metadata["ebm_nn.dtype"], T::DTYPE.name());
    assert_eq!(got.metadata["ebm_nn.format_version"], "1");
    assert_eq!(dir.entries(), vec!["model.safetensors"]);

    // Reading without a store gives everything.
    let all = read_safetensors::<T>(&path).unwrap();
    assert_eq!(all.tensors.len(), saved.iter_all().count() + 1);
}

#[test]
fn round_trip_is_bit_exact_in_f32() {
    round_trip::<f32>();
}

#[test]
fn round_trip_is_bit_exact_in_f64() {
    round_trip::<f64>();
}

#[test]
fn saving_again_replaces_the_file() {
    let dir = TempDir::new();
    let path = dir.path("w.safetensors");
    let (mut store, _) = model::<f32>(3);
    save_safetensors(&path, &store, &StateDict::new()).unwrap();
    store.set("energy.1.bias", Tensor::ones([2])).unwrap();
    save_safetensors(&path, &store, &StateDict::new()).unwrap();
    let (mut loaded, _) = model::<f32>(4);
    load_safetensors(&path, &mut loaded).unwrap();
    assert_eq!(loaded.expect("energy.1.bias").to_f64s(), vec![1.0, 1.0]);
    assert_eq!(dir.entries(), vec!["w.safetensors"]);
}

#[test]
fn missing_extra_and_misshaped_tensors_are_reported_together() {
    let dir = TempDir::new();
    let path = dir.path("m.safetensors");
    let mut saved = ParamStore::<f32>::new();
    saved.insert("a", Tensor::ones([2, 3])).unwrap();
    saved.insert("b", Tensor::ones([4])).unwrap();
    saved.insert("stray", Tensor::ones([1])).unwrap();
    save_safetensors(&path, &saved, &StateDict::new()).unwrap();

    let mut target = ParamStore::<f32>::new();
    target.insert("a", Tensor::zeros([3, 2])).unwrap();
    target.insert("b", Tensor::zeros([4])).unwrap();
    target.insert_buffer("c.u", Tensor::zeros([5])).unwrap();
    let err = load_safetensors(&path, &mut target).unwrap_err();
    let NnError::Mismatch(report) = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(report.missing, vec![("c.u".to_string(), vec![5])]);
    assert_eq!(report.unexpected, vec![("stray".to_string(), vec![1])]);
    assert_eq!(report.wrong_shape.len(), 1);
    assert_eq!(
        (
            report.wrong_shape[0].expected.clone(),
            report.wrong_shape[0].found.clone()
        ),
        (vec![3, 2], vec![2, 3])
    );
    let text = err.to_string();
    for needle in [
        "c.u",
        "stray",
        "a (expected [3, 2], found [2, 3])",
        "architecture",
    ] {
        assert!(text.contains(needle), "{needle} not in: {text}");
    }
    // Nothing was loaded, not even the tensor that matched.
    assert_eq!(target.expect("b").to_f64s(), vec![0.0; 4]);
}

#[test]
fn dtype_mismatch_is_an_error() {
    let dir = TempDir::new();
    let path = dir.path("f64.safetensors");
    let (saved, _) = model::<f64>(5);
    save_safetensors(&path, &saved, &StateDict::new()).unwrap();
    let (mut target, _) = model::<f32>(5);
    let err = load_safetensors(&path, &mut target).unwrap_err();
    assert!(
        matches!(&err, NnError::DTypeMismatch { expected, found, .. } if expected == "f32" && found == "f64"),
        "{err}"
    );
    assert!(err.to_string().contains("cast"), "{err}");
    assert!(read_safetensors::<f32>(&path).is_err());
    assert!(read_safetensors::<f64>(&path).is_ok());
}

#[test]
fn unreadable_files_are_errors() {
    let dir = TempDir::new();
    let (mut store, _) = model::<f32>(6);
    let err = load_safetensors(dir.path("absent.safetensors"), &mut store).unwrap_err();
    assert!(matches!(err, NnError::Io { op: "read", .. }), "{err}");
    let junk = dir.path("junk.safetensors");
    std::fs::write(&junk, b"definitely not safetensors").unwrap();
    let err = load_safetensors(&junk, &mut store).unwrap_err();
    assert!(matches!(err, NnError::Format { .. }), "{err}");
}

#[test]
fn extras_may_not_shadow_stored_names() {
    let dir = TempDir::new();
    let path = dir.path("x.safetensors");
    let (store, _) = model::<f32>(7);
    let mut extras = StateDict::new();
    extras
        .tensors
        .insert("energy.0.weight".into(), Tensor::zeros([1]));
    let err = save_safetensors(&path, &store, &extras).unwrap_err();
    assert!(matches!(err, NnError::DuplicateName { .. }), "{err}");
    assert!(dir.entries().is_empty());
}

#[test]
fn failed_write_to_a_missing_directory_leaves_nothing() {
    let dir = TempDir::new();
    let path = dir.path("no/such/dir/w.safetensors");
    let (store, _) = model::<f32>(8);
    let err = save_safetensors(&path, &store, &StateDict::new()).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err}");
    assert!(dir.entries().is_empty());
}

#[test]
fn failed_rename_removes_the_temporary_file_and_keeps_the_target() {
    // The target is a non-empty directory, so the final rename fails after the temporary file
    // was written and synced: it must be removed, and the target left as it was.
    let dir = TempDir::new();
    let target = dir.path("w.safetensors");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"old").unwrap();
    let (store, _) = model::<f32>(9);
    let err = save_safetensors(&target, &store, &StateDict::new()).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err}");
    assert_eq!(dir.entries(), vec!["w.safetensors"]);
    assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"old");
}

#[test]
fn failed_save_leaves_an_existing_file_untouched() {
    let dir = TempDir::new();
    let path = dir.path("w.safetensors");
    let (store, _) = model::<f32>(10);
    save_safetensors(&path, &store, &StateDict::new()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut bad = StateDict::new();
    bad.tensors.insert("has space".into(), Tensor::zeros([1]));
    assert!(save_safetensors(&path, &store, &bad).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(dir.entries(), vec!["w.safetensors"]);
    assert!(Path::new(&path).is_file());
}
