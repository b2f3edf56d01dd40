//! Saving and loading the neural energies: round trips are bit for bit, and every problem
//! with a file is an error that names it.

use ebm::Error;
use ebm::energy::{
    ConvEnergy, ConvEnergyConfig, EnergyModel, EnergySpec, MlpEnergy, MlpEnergyConfig,
    NoiseConditionalEnergy, NoiseConditionalMlp, NoiseConditionalMlpConfig, NoiseConditionalModel,
    load_energy, load_noise_conditional_energy, read_energy_spec, save_energy,
    save_noise_conditional_energy,
};
use ebm_nn::{SpectralNormConfig, StateDict, save_safetensors};
use ebm_tensor::{Float, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::PathBuf;

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let file = format!("ebm-neural-{name}-{}.safetensors", std::process::id());
        TempFile(std::env::temp_dir().join(file))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn bits<T: Float>(t: &Tensor<T>) -> Vec<u64> {
    t.to_f64s().iter().map(|v| v.to_bits()).collect()
}

fn extras<T: Float>() -> StateDict<T> {
    let mut extras = StateDict::new();
    extras.tensors.insert(
        "optim.exp_avg".into(),
        Tensor::from_f64s(&[0.25, -1.5], [2]),
    );
    extras.metadata.insert("optim.step".into(), "7".into());
    extras
}

/// Saves, loads, and compares the energies on a batch bit for bit, and the extras.
fn round_trip<T: Float, M: EnergyModel<T>>(name: &str, model: &M, x: &Tensor<T>) {
    let file = TempFile::new(name);
    save_energy(&file.0, model, &extras()).unwrap();
    let (loaded, loaded_extras) = load_energy::<T>(&file.0).unwrap();
    assert_eq!(loaded.spec(), model.spec());
    assert_eq!(bits(&loaded.energy(x)), bits(&model.energy(x)), "{name}");
    assert_eq!(loaded_extras, extras(), "{name}");
}

#[test]
fn mlp_round_trip_is_bit_identical_in_f32_and_f64() {
    let mut rng = StdRng::seed_from_u64(0);
    let config = MlpEnergyConfig {
        spectral_norm: Some(SpectralNormConfig::default()),
        ..MlpEnergyConfig::new(&[3, 16, 16, 1])
    };
    // A few power iterations first, so that u differs from a fresh build's.
    let mut model = MlpEnergy::<f32>::new(config.clone(), &mut rng).unwrap();
    model.update_state();
    round_trip("mlp32", &model, &Tensor::randn([8, 3], &mut rng));
    let mut model = MlpEnergy::<f64>::new(config, &mut rng).unwrap();
    model.update_state();
    round_trip("mlp64", &model, &Tensor::randn([8, 3], &mut rng));
}

#[test]
fn conv_round_trip_is_bit_identical() {
    let mut rng = StdRng::seed_from_u64(1);
    let config = ConvEnergyConfig {
        spectral_norm: Some(SpectralNormConfig::default()),
        ..ConvEnergyConfig::new(1, 6, 6, &[2, 4])
    };
    let mut model = ConvEnergy::<f32>::new(config, &mut rng).unwrap();
    model.update_state();
    round_trip("conv", &model, &Tensor::randn([3, 1, 6, 6], &mut rng));
}

#[test]
fn noise_conditional_round_trip_is_bit_identical() {
    let mut rng = StdRng::seed_from_u64(2);
    let config = NoiseConditionalMlpConfig::new(&[2, 8, 1]);
    let model = NoiseConditionalMlp::<f64>::new(config, &mut rng).unwrap();
    let file = TempFile::new("ncsn");
    save_noise_conditional_energy(&file.0, &model, &extras()).unwrap();
    let (loaded, loaded_extras) = load_noise_conditional_energy::<f64>(&file.0).unwrap();
    let x = Tensor::<f64>::randn([5, 2], &mut rng);
    let sigma = Tensor::from_f64s(&[0.01, 0.1, 0.5, 1.0, 3.0], [5]);
    assert_eq!(
        bits(&loaded.energy_at(&x, &sigma)),
        bits(&model.energy_at(&x, &sigma))
    );
    assert_eq!(loaded.spec(), model.spec());
    assert_eq!(loaded_extras, extras());

    // The other loader refuses it and says which one to use.
    let err = load_energy::<f64>(&file.0).err().unwrap();
    assert!(
        err.to_string().contains("load_noise_conditional_energy"),
        "{err}"
    );
}

#[test]
fn plain_energy_in_the_noise_conditional_loader_points_to_load_energy() {
    let mut rng = StdRng::seed_from_u64(3);
    let model = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 4, 1]), &mut rng).unwrap();
    let file = TempFile::new("plain-in-ncsn");
    save_energy(&file.0, &model, &StateDict::new()).unwrap();
    assert_eq!(read_energy_spec::<f32>(&file.0).unwrap(), model.spec());
    let err = load_noise_conditional_energy::<f32>(&file.0).err().unwrap();
    assert!(err.to_string().contains("`load_energy`"), "{err}");
}

/// Writes `model`'s weights with `spec_json` as the spec.
fn write_with_spec(file: &TempFile, model: &MlpEnergy<f32>, spec_json: &str, version: &str) {
    let mut extras = StateDict::new();
    extras.metadata.insert("energy".into(), spec_json.into());
    extras
        .metadata
        .insert("energy_format_version".into(), version.into());
    save_safetensors(&file.0, model.params(), &extras).unwrap();
}

#[test]
fn unknown_kind_is_an_error_listing_the_known_ones() {
    let mut rng = StdRng::seed_from_u64(4);
    let model = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 4, 1]), &mut rng).unwrap();
    let file = TempFile::new("unknown-kind");
    write_with_spec(
        &file,
        &model,
        r#"{"kind": "transformer", "widths": [2, 4, 1]}"#,
        "1",
    );
    let err = load_energy::<f32>(&file.0).err().unwrap();
    assert!(matches!(err, Error::Restore { .. }), "{err}");
    let text = err.to_string();
    for needle in [
        "transformer",
        "mlp, conv",
        "ncsn-mlp",
        "neural-unknown-kind",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from: {text}");
    }
}

#[test]
fn settings_that_do_not_fit_the_kind_are_errors() {
    let mut rng = StdRng::seed_from_u64(5);
    let model = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 4, 1]), &mut rng).unwrap();
    let file = TempFile::new("bad-settings");
    write_with_spec(
        &file,
        &model,
        r#"{"kind": "mlp", "widths": [2, 4, 1], "depth": 2}"#,
        "1",
    );
    let err = load_energy::<f32>(&file.0).err().unwrap();
    assert!(err.to_string().contains("depth"), "{err}");
}

#[test]
fn mismatched_weights_are_an_error_naming_each_tensor() {
    let mut rng = StdRng::seed_from_u64(6);
    let model = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 4, 1]), &mut rng).unwrap();
    let file = TempFile::new("mismatch");
    // The spec says 8 hidden units and a third layer; the weights have 4 and two layers.
    let spec = EnergySpec::new("mlp", &MlpEnergyConfig::new(&[2, 8, 3, 1]));
    write_with_spec(&file, &model, &spec.to_json(), "1");
    let err = load_energy::<f32>(&file.0).err().unwrap();
    assert!(matches!(err, Error::Nn(_)), "{err}");
    let text = err.to_string();
    for needle in [
        "energy.0.weight (expected [8, 2], found [4, 2])",
        "energy.2.weight",
        "energy.1.bias (expected [3], found [1])",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from: {text}");
    }
}

#[test]
fn files_without_a_spec_or_from_a_newer_version_are_refused() {
    let mut rng = StdRng::seed_from_u64(7);
    let model = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 4, 1]), &mut rng).unwrap();
    let file = TempFile::new("no-spec");
    save_safetensors(&file.0, model.params(), &StateDict::new()).unwrap();
    let err = load_energy::<f32>(&file.0).err().unwrap();
    assert!(err.to_string().contains("no `energy` entry"), "{err}");

    write_with_spec(&file, &model, &model.spec().to_json(), "2");
    let err = load_energy::<f32>(&file.0).err().unwrap();
    assert!(err.to_string().contains("version is 2"), "{err}");

    // The element type is checked too: an f32 file is not read as f64.
    save_energy(&file.0, &model, &StateDict::new()).unwrap();
    let err = load_energy::<f64>(&file.0).err().unwrap();
    assert!(err.to_string().contains("f32"), "{err}");
}

#[test]
fn extras_may_not_use_the_checkpoint_keys() {
    let mut rng = StdRng::seed_from_u64(8);
    let model = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 4, 1]), &mut rng).unwrap();
    let file = TempFile::new("reserved");
    let mut extras = StateDict::new();
    extras.metadata.insert("energy".into(), "mine".into());
    let err = save_energy(&file.0, &model, &extras).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(!file.0.exists());
}
