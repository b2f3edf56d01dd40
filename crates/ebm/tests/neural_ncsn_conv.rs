//! The convolutional noise-conditional energy (`ncsn-conv`): shapes, derivatives in x, sigma
//! and a weight against central finite differences in f64, the 1 / sigma scaling, checkpoints,
//! settings, and annealed Langevin sampling on it.

use ebm::Error;
use ebm::energy::{
    AtNoiseLevel, Energy, EnergySpec, NoiseConditionalConv, NoiseConditionalConvConfig,
    NoiseConditionalEnergy, NoiseConditionalModel, load_noise_conditional_energy,
    save_noise_conditional_energy,
};
use ebm::sampler::{AnnealedLangevin, AnnealedLangevinConfig};
use ebm_nn::{ParamStore, SpectralNormConfig, StateDict};
use ebm_tensor::Tensor;
use ebm_tensor::check::{CheckOptions, check_gradients};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::PathBuf;

// The default check (eps 1e-6, atol 1e-6, rtol 1e-5): for these energies of order 1 (sigma in
// [0.3, 1.5)) a central difference errs by about eps^2 |E'''| + 1e-16 |E| / eps, near 1e-10,
// four orders below the tolerance, while a wrong derivative is off by O(1).
fn check() -> CheckOptions {
    CheckOptions::default()
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Two stages on 1x8x8 images (8x8 then 4x4), with or without spectral norm.
fn small(spectral_norm: bool) -> NoiseConditionalConv<f64> {
    let config = NoiseConditionalConvConfig {
        spectral_norm: spectral_norm.then(SpectralNormConfig::default),
        ..NoiseConditionalConvConfig::new(1, 8, 8, &[3, 4])
    };
    NoiseConditionalConv::new(config, &mut rng(1)).unwrap()
}

fn with_tensor(store: &mut ParamStore<f64>, name: &str, value: &Tensor<f64>) {
    *store.get_mut(name).unwrap() = value.clone();
}

fn bits(t: &Tensor<f64>) -> Vec<u64> {
    t.to_f64s().iter().map(|v| v.to_bits()).collect()
}

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let file = format!("ebm-ncsn-conv-{name}-{}.safetensors", std::process::id());
        TempFile(std::env::temp_dir().join(file))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn images_and_flat_rows_give_the_same_energies_per_sample() {
    let energy = small(false);
    let mut r = rng(10);
    let images = Tensor::<f64>::randn([3, 1, 8, 8], &mut r);
    let sigma = Tensor::from_f64s(&[0.1, 0.5, 2.0], [3]);
    let e = energy.energy_at(&images, &sigma);
    assert_eq!(e.dims(), &[3]);
    let rows = images.reshape([3, 64]);
    assert_eq!(bits(&energy.energy_at(&rows, &sigma)), bits(&e));
    let at = AtNoiseLevel::new(&energy, 0.3);
    assert_eq!(at.score(&images).unwrap().dims(), &[3, 1, 8, 8]);
    assert_eq!(at.score(&rows).unwrap().dims(), &[3, 64]);
}

#[test]
#[should_panic(expected = "expected images [n, 1, 8, 8]")]
fn images_of_another_size_are_refused() {
    small(false).energy_at(&Tensor::zeros([1, 1, 6, 8]), &Tensor::ones([1]));
}

#[test]
fn derivatives_in_x_and_sigma_match_finite_differences() {
    let mut r = rng(11);
    let x = Tensor::<f64>::randn([2, 1, 8, 8], &mut r);
    // Noise levels in [0.3, 1.5): far from 0 compared with eps, where ln and 1/sigma are smooth.
    let sigma = Tensor::<f64>::rand_uniform([2], 0.3, 1.5, &mut r);
    for spectral_norm in [false, true] {
        let energy = small(spectral_norm);
        // Order 2 in (x, sigma): the score, its derivative in sigma, and the Hessian in x.
        let f = |v: &[Tensor<f64>]| energy.energy_at(&v[0], &v[1]);
        check_gradients(&f, &[x.clone(), sigma.clone()], 2, &check())
            .unwrap_or_else(|e| panic!("spectral norm {spectral_norm}: {e}"));
    }
}

#[test]
fn derivatives_in_weights_match_finite_differences() {
    let energy = small(false);
    let mut r = rng(12);
    let x = Tensor::<f64>::randn([2, 1, 8, 8], &mut r);
    let sigma = Tensor::<f64>::rand_uniform([2], 0.3, 1.5, &mut r);
    for name in [
        "energy.conv.1.weight",
        "energy.cond.0.weight",
        "energy.cond.1.weight",
        "energy.head.weight",
    ] {
        let w = energy.params().expect(name).detach();
        let f = |v: &[Tensor<f64>]| {
            let mut model = energy.clone();
            with_tensor(model.params_mut(), name, &v[2]);
            model.energy_at(&v[0], &v[1])
        };
        check_gradients(&f, &[x.clone(), sigma.clone(), w], 1, &check())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn energy_depends_on_sigma_beyond_the_scaling() {
    let energy = small(false);
    let x = Tensor::<f64>::randn([4, 1, 8, 8], &mut rng(13));
    let (low, high) = (0.1, 1.0);
    let e_low = AtNoiseLevel::new(&energy, low).energy(&x).to_f64s();
    let e_high = AtNoiseLevel::new(&energy, high).energy(&x).to_f64s();
    // sigma E(x, sigma) = f(x, ln sigma): the shifts move by ln 10 times weights of order 1,
    // so f moves by O(0.1) or more; 1e-6 only rules out equality up to rounding.
    for (a, b) in e_low.iter().zip(&e_high) {
        assert!(
            (a * low - b * high).abs() > 1e-6,
            "{a} at {low}, {b} at {high}"
        );
    }
}

#[test]
fn with_the_conditioning_zeroed_sigma_times_energy_and_score_are_level_free() {
    // With every shift weight a_i zero, f does not see sigma, so E(x, sigma) = f(x) / sigma
    // exactly: sigma E and sigma s(x, sigma) are the same at every level (up to rounding of
    // the division and of the shift 0 * ln sigma = 0: 1e-12 relative).
    let mut energy = small(false);
    for (i, c) in [3, 4].into_iter().enumerate() {
        let name = format!("energy.cond.{i}.weight");
        energy
            .params_mut()
            .set(&name, Tensor::zeros([c, 1]))
            .unwrap();
    }
    let x = Tensor::<f64>::randn([3, 1, 8, 8], &mut rng(14));
    let scaled = |sigma: f64| {
        let at = AtNoiseLevel::new(&energy, sigma);
        let e = at
            .energy(&x)
            .to_f64s()
            .iter()
            .map(|e| e * sigma)
            .collect::<Vec<_>>();
        let s = at.score(&x).unwrap().to_f64s();
        let s = s.iter().map(|s| s * sigma).collect::<Vec<_>>();
        (e, s)
    };
    let (e_ref, s_ref) = scaled(1.0);
    assert!(
        s_ref.iter().any(|s| s.abs() > 1e-3),
        "a trivial score tests nothing"
    );
    for sigma in [0.01, 0.3, 5.0] {
        let (e, s) = scaled(sigma);
        for (a, b) in e.iter().chain(&s).zip(e_ref.iter().chain(&s_ref)) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "sigma {sigma}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn checkpoint_round_trip_is_bit_identical() {
    for spectral_norm in [false, true] {
        let mut model = small(spectral_norm);
        // Move the power-iteration vectors off their initial values, so that they must be
        // saved too.
        model.update_state();
        let file = TempFile::new(&format!("round-trip-{spectral_norm}"));
        save_noise_conditional_energy(&file.0, &model, &StateDict::new()).unwrap();
        let (loaded, _) = load_noise_conditional_energy::<f64>(&file.0).unwrap();
        assert_eq!(loaded.spec(), model.spec());
        assert_eq!(loaded.spec().kind, "ncsn-conv");
        let mut r = rng(15);
        let x = Tensor::<f64>::randn([4, 1, 8, 8], &mut r);
        let sigma = Tensor::from_f64s(&[0.01, 0.1, 1.0, 3.0], [4]);
        assert_eq!(
            bits(&loaded.energy_at(&x, &sigma)),
            bits(&model.energy_at(&x, &sigma))
        );
    }
}

#[test]
fn unknown_and_out_of_range_settings_are_errors() {
    let spec = EnergySpec::from_json(
        r#"{"kind": "ncsn-conv", "in_channels": 1, "height": 8, "width": 8, "channels": [4], "depth": 2}"#,
    )
    .unwrap();
    let err = spec
        .build_noise_conditional::<f64, _>(&mut rng(16))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Restore { .. }), "{err}");
    assert!(err.to_string().contains("depth"), "{err}");

    // The plain builder points to the noise-conditional one.
    let good = small(false).spec();
    let err = good.build::<f64, _>(&mut rng(16)).err().unwrap();
    assert!(err.to_string().contains("build_noise_conditional"), "{err}");
    assert!(good.build_noise_conditional::<f64, _>(&mut rng(16)).is_ok());

    let config = NoiseConditionalConvConfig::new(1, 8, 8, &[4, 0]);
    let err = NoiseConditionalConv::<f64>::new(config, &mut rng(16)).unwrap_err();
    assert!(err.to_string().contains("[4, 0]"), "{err}");
}

#[test]
fn annealed_langevin_samples_stay_in_the_clamp_range() {
    let energy = small(false);
    let sampler = AnnealedLangevin::new(AnnealedLangevinConfig {
        steps_per_level: 5,
        step_size: 1e-3,
        clamp: Some((0.0, 1.0)),
        ..AnnealedLangevinConfig::geometric(1.0, 0.1, 3)
    })
    .unwrap();
    let mut r = rng(17);
    let x0 = Tensor::<f64>::rand_uniform([6, 1, 8, 8], 0.0, 1.0, &mut r);
    let (samples, info) = sampler.sample(&mut r, x0.clone(), &energy).unwrap();
    assert_eq!(samples.dims(), &[6, 1, 8, 8]);
    assert_eq!(info.levels.len(), 3);
    assert_eq!(info.n_divergent(), 0);
    let values = samples.to_f64s();
    assert!(
        values.iter().all(|v| (0.0..=1.0).contains(v)),
        "out of [0, 1]"
    );
    // The chains moved: the noise alone (sqrt(alpha) >= 0.03 per step) changes every pixel.
    assert_ne!(values, x0.to_f64s());
}
