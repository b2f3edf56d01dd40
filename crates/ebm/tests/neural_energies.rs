//! The neural energies (MLP, convolutional, noise-conditional MLP): shapes, derivatives in the
//! input and the weights against central finite differences in f64, spectral normalisation,
//! and the noise scaling of the noise-conditional energy.

use ebm::energy::{
    AtNoiseLevel, ConvEnergy, ConvEnergyConfig, Energy, EnergyModel, MlpEnergy, MlpEnergyConfig,
    NoiseConditionalEnergy, NoiseConditionalMlp, NoiseConditionalMlpConfig, NoiseConditionalModel,
};
use ebm_nn::{Activation, ParamStore, SpectralNormConfig};
use ebm_tensor::Tensor;
use ebm_tensor::check::{CheckOptions, check_gradients};
use rand::SeedableRng;
use rand::rngs::StdRng;

// The default check (eps 1e-6, atol 1e-6, rtol 1e-5): for these energies of order 1 a central
// difference errs by about eps^2 |E'''| + 1e-16 |E| / eps, near 1e-10, four orders below the
// tolerance, while a wrong derivative is off by O(1).
fn check() -> CheckOptions {
    CheckOptions::default()
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn mlp(widths: &[usize], spectral_norm: bool) -> MlpEnergy<f64> {
    let config = MlpEnergyConfig {
        spectral_norm: spectral_norm.then(SpectralNormConfig::default),
        ..MlpEnergyConfig::new(widths)
    };
    MlpEnergy::new(config, &mut rng(1)).unwrap()
}

fn small_conv(spectral_norm: bool) -> ConvEnergy<f64> {
    let config = ConvEnergyConfig {
        spectral_norm: spectral_norm.then(SpectralNormConfig::default),
        ..ConvEnergyConfig::new(2, 5, 4, &[2, 3])
    };
    ConvEnergy::new(config, &mut rng(2)).unwrap()
}

fn ncsn(widths: &[usize]) -> NoiseConditionalMlp<f64> {
    let config = NoiseConditionalMlpConfig::new(widths);
    NoiseConditionalMlp::new(config, &mut rng(3)).unwrap()
}

/// A copy of `store` whose tensor `name` is `value`, graph and all: so that finite-difference
/// checks can differentiate the energy through that weight.
fn with_tensor(store: &mut ParamStore<f64>, name: &str, value: &Tensor<f64>) {
    *store.get_mut(name).unwrap() = value.clone();
}

#[test]
fn energies_map_a_batch_to_one_value_per_sample() {
    let mut r = rng(10);
    let energy = mlp(&[6, 8, 1], false);
    // Samples of any shape holding 6 values are flattened.
    for x in [
        Tensor::<f64>::randn([5, 6], &mut r),
        Tensor::<f64>::randn([5, 2, 3], &mut r),
    ] {
        assert_eq!(energy.energy(&x).dims(), &[5]);
        assert_eq!(energy.score(&x).unwrap().dims(), x.dims());
    }

    let conv = small_conv(false);
    let images = Tensor::<f64>::randn([3, 2, 5, 4], &mut r);
    assert_eq!(conv.energy(&images).dims(), &[3]);
    // Flat rows are the same images.
    let rows = images.reshape([3, 40]);
    assert_eq!(conv.energy(&rows).to_f64s(), conv.energy(&images).to_f64s());

    let noise_conditional = ncsn(&[3, 4, 1]);
    let x = Tensor::<f64>::randn([4, 3], &mut r);
    let sigma = Tensor::from_f64s(&[0.1, 0.5, 1.0, 2.0], [4]);
    assert_eq!(noise_conditional.energy_at(&x, &sigma).dims(), &[4]);
}

#[test]
#[should_panic(expected = "expected images [n, 2, 5, 4]")]
fn conv_energy_refuses_images_of_another_size() {
    small_conv(false).energy(&Tensor::<f64>::zeros([1, 2, 4, 4]));
}

#[test]
fn mlp_energy_derivatives_in_x_match_finite_differences() {
    let energy = mlp(&[3, 5, 4, 1], false);
    let x = Tensor::<f64>::randn([3, 3], &mut rng(11));
    // Order 2: the gradient in x and the gradient of the gradient.
    check_gradients(&|v| energy.energy(&v[0]), &[x], 2, &check()).unwrap();
}

#[test]
fn mlp_energy_derivatives_in_weights_match_finite_differences() {
    // Order 2 in (x, W): includes d/dW of grad_x E, which score matching trains through.
    let energy = mlp(&[2, 4, 1], false);
    let x = Tensor::<f64>::randn([3, 2], &mut rng(12));
    for name in ["energy.0.weight", "energy.1.weight", "energy.0.bias"] {
        let w = energy.params().expect(name).detach();
        let f = |v: &[Tensor<f64>]| {
            let mut model = energy.clone();
            with_tensor(model.params_mut(), name, &v[1]);
            model.energy(&v[0])
        };
        check_gradients(&f, &[x.clone(), w], 2, &check()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn spectral_norm_mlp_derivatives_match_finite_differences() {
    // sigma(W) = u^T W v equals |W^T u| for the stored u, whose exact derivative u v^T is what
    // the graph records: first order in the weight is exact. Second order only in x (u and v
    // do not depend on x).
    let mut energy = mlp(&[2, 4, 1], true);
    energy.update_state();
    let x = Tensor::<f64>::randn([3, 2], &mut rng(13));
    check_gradients(
        &|v| energy.energy(&v[0]),
        std::slice::from_ref(&x),
        2,
        &check(),
    )
    .unwrap();
    let w = energy.params().expect("energy.0.weight").detach();
    let f = |v: &[Tensor<f64>]| {
        let mut model = energy.clone();
        with_tensor(model.params_mut(), "energy.0.weight", &v[1]);
        model.energy(&v[0])
    };
    check_gradients(&f, &[x, w], 1, &check()).unwrap();
}

#[test]
fn conv_energy_derivatives_match_finite_differences() {
    let energy = small_conv(false);
    let x = Tensor::<f64>::randn([2, 2, 5, 4], &mut rng(14));
    check_gradients(
        &|v| energy.energy(&v[0]),
        std::slice::from_ref(&x),
        2,
        &check(),
    )
    .unwrap();
    for name in [
        "energy.conv.0.weight",
        "energy.conv.1.bias",
        "energy.head.weight",
    ] {
        let w = energy.params().expect(name).detach();
        let f = |v: &[Tensor<f64>]| {
            let mut model = energy.clone();
            with_tensor(model.params_mut(), name, &v[1]);
            model.energy(&v[0])
        };
        check_gradients(&f, &[x.clone(), w], 1, &check()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn spectral_norm_conv_derivatives_match_finite_differences() {
    let energy = small_conv(true);
    let x = Tensor::<f64>::randn([2, 2, 5, 4], &mut rng(15));
    check_gradients(
        &|v| energy.energy(&v[0]),
        std::slice::from_ref(&x),
        2,
        &check(),
    )
    .unwrap();
    let w = energy.params().expect("energy.conv.1.weight").detach();
    let f = |v: &[Tensor<f64>]| {
        let mut model = energy.clone();
        with_tensor(model.params_mut(), "energy.conv.1.weight", &v[1]);
        model.energy(&v[0])
    };
    check_gradients(&f, &[x, w], 1, &check()).unwrap();
}

#[test]
fn noise_conditional_derivatives_match_finite_differences() {
    let energy = ncsn(&[2, 5, 1]);
    let mut r = rng(16);
    let x = Tensor::<f64>::randn([3, 2], &mut r);
    // Noise levels in [0.3, 1.5): far from 0 compared with eps, where ln and 1/sigma are smooth.
    let sigma = Tensor::<f64>::rand_uniform([3], 0.3, 1.5, &mut r);
    let f = |v: &[Tensor<f64>]| energy.energy_at(&v[0], &v[1]);
    check_gradients(&f, &[x.clone(), sigma.clone()], 2, &check()).unwrap();
    let w = energy.params().expect("energy.0.weight").detach();
    let g = |v: &[Tensor<f64>]| {
        let mut model = energy.clone();
        with_tensor(model.params_mut(), "energy.0.weight", &v[2]);
        model.energy_at(&v[0], &v[1])
    };
    check_gradients(&g, &[x, sigma, w], 2, &check()).unwrap();
}

/// The top singular value of a row-major `rows x cols` matrix, by power iteration on W^T W in
/// f64 run until the estimate stops changing.
fn top_singular_value(w: &[f64], rows: usize, cols: usize) -> f64 {
    let mut v = vec![1.0; cols];
    let mut estimate = 0.0;
    for _ in 0..1_000_000 {
        let wv: Vec<f64> = (0..rows)
            .map(|i| (0..cols).map(|j| w[i * cols + j] * v[j]).sum())
            .collect();
        let wtwv: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|i| w[i * cols + j] * wv[i]).sum())
            .collect();
        let norm = wtwv.iter().map(|a| a * a).sum::<f64>().sqrt();
        v = wtwv.iter().map(|a| a / norm).collect();
        let next = norm.sqrt();
        if (next - estimate).abs() <= 1e-15 * next {
            return next;
        }
        estimate = next;
    }
    panic!("the reference power iteration did not converge");
}

#[test]
fn update_state_advances_power_iteration_to_unit_spectral_norm() {
    let mut energy = mlp(&[3, 6, 5, 1], true);
    let u_name = "energy.1.weight_u";
    let before = energy.params().expect(u_name).to_f64s();

    // An evaluation leaves u alone; update_state moves it (the weights are random, so 15
    // initial iterations have not converged to rounding).
    let x = Tensor::<f64>::randn([4, 3], &mut rng(17));
    let _ = energy.energy_and_grad(&x, true).unwrap();
    assert_eq!(energy.params().expect(u_name).to_f64s(), before);
    energy.update_state();
    assert_ne!(energy.params().expect(u_name).to_f64s(), before);

    // After many steps the normalised weight's top singular value is 1. The error of power
    // iteration shrinks by (s2/s1)^2 per step: even at a rate of 0.99 (random 5x6 Gaussian
    // matrices have a much larger gap) 2000 steps shrink it by 2e-9, and sigma's error is
    // second order in u's, so 1e-9 relative is met with margin above f64 rounding (1e-15).
    for _ in 0..2000 {
        energy.update_state();
    }
    let layer = &energy.network().layers()[1];
    let normalised = layer.weight(energy.params()).to_f64s();
    let top = top_singular_value(&normalised, 5, 6);
    assert!(
        (top - 1.0).abs() < 1e-9,
        "normalised top singular value {top}"
    );
    let raw = energy.params().expect("energy.1.weight").to_f64s();
    assert!(
        (top_singular_value(&raw, 5, 6) - 1.0).abs() > 1e-3,
        "the raw weight must not already have norm 1 for the test to mean anything"
    );
}

#[test]
fn conv_spectral_norm_bounds_every_kernel_matrix() {
    let mut energy = small_conv(true);
    let before = energy.params().expect("energy.conv.0.weight_u").to_f64s();
    energy.update_state();
    assert_ne!(
        energy.params().expect("energy.conv.0.weight_u").to_f64s(),
        before
    );
    for _ in 0..2000 {
        energy.update_state();
    }
    // Kernel matrices [o, c k k]: conv 0 is 2 x 18, conv 1 is 3 x 18; the head is 1 x 18
    // (rank one: power iteration is exact after one step). Same tolerance as above.
    let store = energy.params();
    let mut matrices: Vec<(Vec<f64>, usize, usize)> = energy
        .convs()
        .iter()
        .map(|c| {
            let k = c.config();
            let cols = k.in_channels * k.kernel_size * k.kernel_size;
            (c.weight(store).to_f64s(), k.out_channels, cols)
        })
        .collect();
    matrices.push((energy.head().weight(store).to_f64s(), 1, 18));
    for (w, rows, cols) in matrices {
        let top = top_singular_value(&w, rows, cols);
        assert!((top - 1.0).abs() < 1e-9, "{rows}x{cols}: {top}");
    }
}

#[test]
fn noise_conditional_energy_depends_on_sigma_beyond_the_scaling() {
    let energy = ncsn(&[2, 8, 1]);
    let x = Tensor::<f64>::randn([5, 2], &mut rng(18));
    let (low, high) = (0.1, 1.0);
    let e_low = AtNoiseLevel::new(&energy, low).energy(&x).to_f64s();
    let e_high = AtNoiseLevel::new(&energy, high).energy(&x).to_f64s();
    // sigma E(x, sigma) = f(x, ln sigma): it moves with ln sigma (by O(0.1) for a random
    // network and ln 10 between the levels; 1e-6 only rules out equality up to rounding).
    for (a, b) in e_low.iter().zip(&e_high) {
        assert!(
            (a * low - b * high).abs() > 1e-6,
            "{a} at {low}, {b} at {high}"
        );
    }
}

#[test]
fn noise_conditional_score_scales_as_one_over_sigma() {
    // With the ln-sigma column of the first layer zeroed, f does not see sigma, so
    // E(x, sigma) = f(x) / sigma exactly: sigma E and sigma s(x, sigma) are the same at every
    // level (up to rounding of the division: 1e-12 relative).
    let mut energy = ncsn(&[2, 6, 1]);
    let w = energy.params().expect("energy.0.weight").to_f64s();
    let masked: Vec<f64> = w.chunks(3).flat_map(|row| [row[0], row[1], 0.0]).collect();
    energy
        .params_mut()
        .set("energy.0.weight", Tensor::from_f64s(&masked, [6, 3]))
        .unwrap();

    let x = Tensor::<f64>::randn([4, 2], &mut rng(19));
    let scaled = |sigma: f64| {
        let at = AtNoiseLevel::new(&energy, sigma);
        let e: Vec<f64> = at.energy(&x).to_f64s().iter().map(|e| e * sigma).collect();
        let s: Vec<f64> = at
            .score(&x)
            .unwrap()
            .to_f64s()
            .iter()
            .map(|s| s * sigma)
            .collect();
        (e, s)
    };
    let (e_ref, s_ref) = scaled(1.0);
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
fn configs_out_of_range_are_errors_naming_the_value() {
    let mut r = rng(20);
    let err = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 4, 2]), &mut r).unwrap_err();
    assert!(err.to_string().contains("[2, 4, 2]"), "{err}");
    let bad_sn = MlpEnergyConfig {
        spectral_norm: Some(SpectralNormConfig {
            n_power_iterations: 0,
            eps: 1e-12,
        }),
        activation: Activation::Tanh,
        ..MlpEnergyConfig::new(&[2, 4, 1])
    };
    let err = MlpEnergy::<f32>::new(bad_sn, &mut r).unwrap_err();
    assert!(err.to_string().contains("n_power_iterations"), "{err}");
    let err = ConvEnergy::<f32>::new(ConvEnergyConfig::new(1, 0, 8, &[4]), &mut r).unwrap_err();
    assert!(err.to_string().contains("[1, 0, 8]"), "{err}");
    let err =
        NoiseConditionalMlp::<f32>::new(NoiseConditionalMlpConfig::new(&[2]), &mut r).unwrap_err();
    assert!(err.to_string().contains("last width of 1"), "{err}");
}
