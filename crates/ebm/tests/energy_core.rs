//! The `Energy` trait's derived quantities (gradient, score, Laplacian) and the batched
//! evaluation that every sampler shares, on energies whose derivatives are known by hand.

use ebm::energy::{AtNoiseLevel, Energy};
use ebm::sampler::{CHAIN_SHARD, ChainState, Langevin, LangevinConfig, Sampler, evaluate};
use ebm_tensor::check::{CheckOptions, check_gradients};
use ebm_tensor::{Tensor, with_threads};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// E(x) = sum_i (x_i^2 / 2 + a tanh x_i): gradient x + a (1 - tanh^2 x), Laplacian
/// sum_i (1 - 2 a tanh x_i (1 - tanh^2 x_i)).
fn wavy(a: f64) -> impl Fn(&Tensor<f64>) -> Tensor<f64> + Send + Sync {
    move |x: &Tensor<f64>| {
        (&x.square().mul_scalar(0.5) + &x.tanh().mul_scalar(a)).sum_axes(&[1], false)
    }
}

fn points(n: usize, d: usize, seed: u64) -> Tensor<f64> {
    Tensor::randn([n, d], &mut StdRng::seed_from_u64(seed))
}

#[test]
fn closure_energy_gradient_score_and_laplacian_match_closed_forms() {
    let a = 0.7;
    let energy = wavy(a);
    let x = points(5, 3, 1);
    let (e, g) = energy.energy_and_grad(&x, false).unwrap();
    let xs = x.to_f64s();

    let sech2 = |v: f64| 1.0 - v.tanh().powi(2);
    let want_g: Vec<f64> = xs.iter().map(|&v| v + a * sech2(v)).collect();
    let want_lap: Vec<f64> = xs
        .chunks(3)
        .map(|r| r.iter().map(|&v| 1.0 - 2.0 * a * v.tanh() * sech2(v)).sum())
        .collect();
    let want_e: Vec<f64> = xs
        .chunks(3)
        .map(|r| r.iter().map(|&v| 0.5 * v * v + a * v.tanh()).sum())
        .collect();

    // Rounding only: every quantity is a handful of f64 operations.
    let close = |got: &[f64], want: &[f64]| {
        got.iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() < 1e-12 * (1.0 + w.abs()))
    };
    assert!(close(&e.to_f64s(), &want_e));
    assert!(close(&g.to_f64s(), &want_g));
    let score: Vec<f64> = energy.score(&x).unwrap().to_f64s();
    assert!(close(
        &score,
        &want_g.iter().map(|v| -v).collect::<Vec<_>>()
    ));
    assert!(close(
        &energy.laplacian(&x, false).unwrap().to_f64s(),
        &want_lap
    ));
    assert!(
        !g.requires_grad() && !e.requires_grad(),
        "detached without create_graph"
    );
}

#[test]
fn gradient_with_graph_differentiates_again_in_x_and_in_parameters() {
    // The mean squared gradient as a function of (x, w) for E(x) = sum_i w_i^2 x_i^4 / 4 + w.x:
    // a second derivative of E, checked against central differences to second order (a third
    // derivative of E).
    let w0 = points(1, 3, 2).reshape([3]);
    let x0 = points(4, 3, 3);
    let f = |inputs: &[Tensor<f64>]| {
        let (x, w) = (&inputs[0], &inputs[1]);
        let w = w.clone();
        let energy = move |x: &Tensor<f64>| {
            let quartic = &x.powi(4).mul_scalar(0.25) * &w.square();
            (&quartic + &(x * &w)).sum_axes(&[1], false)
        };
        let (_, g) = energy.energy_and_grad(x, true).unwrap();
        g.square().mean()
    };
    check_gradients(&f, &[x0, w0], 2, &CheckOptions::default()).unwrap();
}

#[test]
fn batched_evaluation_is_the_same_for_any_sharding_and_thread_count() {
    let n = 3 * CHAIN_SHARD + 7;
    let x = points(n, 2, 4).cast::<f32>();
    let energy32 = |x: &Tensor<f32>| {
        (&x.square().mul_scalar(0.5) + &x.tanh().mul_scalar(0.3)).sum_axes(&[1], false)
    };

    let (e1, g1) = with_threads(1, || evaluate(&energy32, &x)).unwrap();
    let (e2, g2) = with_threads(2, || evaluate(&energy32, &x)).unwrap();
    let (e_whole, g_whole) = energy32.energy_and_grad(&x, false).unwrap();
    let bits = |t: &Tensor<f32>| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&e1), bits(&e2));
    assert_eq!(bits(&g1), bits(&g2));
    // Elementwise energies: the shards compute exactly what the whole batch does.
    assert_eq!(bits(&e1), bits(&e_whole));
    assert_eq!(bits(&g1), bits(&g_whole));
}

#[test]
fn noise_level_adapter_passes_sigma_per_sample() {
    let conditional = |x: &Tensor<f64>, sigma: &Tensor<f64>| {
        assert_eq!(sigma.dims(), &[x.dim(0)]);
        &x.sum_axes(&[1], false) * sigma
    };
    let energy = AtNoiseLevel::new(&conditional, 0.25);
    let x = Tensor::from_f64s(&[1.0, 2.0, 3.0, 4.0], [2, 2]);
    assert_eq!(energy.energy(&x).to_f64s(), [0.75, 1.75]);
    assert_eq!(energy.score(&x).unwrap().to_f64s(), [-0.25; 4]);
}

#[test]
fn chains_need_at_least_one_row() {
    let energy = wavy(0.1);
    let err = ChainState::new(Tensor::<f64>::zeros([0, 2]), &energy).unwrap_err();
    assert!(err.to_string().contains("n >= 1"), "{err}");
}

#[test]
fn langevin_rejects_bad_settings_naming_the_value() {
    let cases = [
        (LangevinConfig::new(0.0), "step_size: got 0"),
        (
            LangevinConfig {
                noise_scale: -1.0,
                ..LangevinConfig::new(0.1)
            },
            "noise_scale: got -1",
        ),
        (
            LangevinConfig {
                grad_clip: Some(0.0),
                ..LangevinConfig::new(0.1)
            },
            "grad_clip: got 0",
        ),
        (
            LangevinConfig {
                clamp: Some((1.0, 0.0)),
                ..LangevinConfig::new(0.1)
            },
            "clamp: got (1, 0)",
        ),
    ];
    for (config, want) in cases {
        let err = Langevin::new(config).unwrap_err().to_string();
        assert!(err.contains(want), "`{err}` should contain `{want}`");
    }
}

#[test]
fn langevin_without_noise_is_gradient_descent_with_clipping_and_clamping() {
    let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
    let x0 = Tensor::from_f64s(&[2.0, -0.1, 0.5, 3.0], [2, 2]);
    let sampler = Langevin::new(LangevinConfig {
        step_size: 0.5,
        noise_scale: 0.0,
        grad_clip: Some(1.0),
        clamp: Some((-1.0, 2.5)),
    })
    .unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let state = sampler.init(x0, &energy).unwrap();
    let (state, info) = sampler.step(&mut rng, state, &energy).unwrap();

    // grad = x, clipped to [-1, 1]; x - 0.5 clip(x), then clamped to [-1, 2.5].
    let want = [2.0 - 0.5, -0.1 + 0.05, 0.5 - 0.25, 2.5];
    let got = state.position.to_f64s();
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-15, "{got:?} vs {want:?}");
    }
    // The state carries the energy and gradient at the new position.
    assert_eq!(state.grad.to_f64s(), got);
    assert_eq!(info.acceptance_rate(), 1.0);
    assert_eq!(info.n_divergent(), 0);
}

#[test]
fn langevin_flags_chains_that_reach_non_finite_energies() {
    // E = -log(x) for x > 0 goes to +inf at 0 and is NaN below: a large step overshoots.
    let energy = |x: &Tensor<f64>| x.log().neg_sum();
    let sampler = Langevin::new(LangevinConfig {
        step_size: 10.0,
        noise_scale: 0.0,
        grad_clip: None,
        clamp: None,
    })
    .unwrap();
    let x0 = Tensor::from_f64s(&[1.0, 100.0], [2, 1]);
    let mut rng = StdRng::seed_from_u64(0);
    let state = sampler.init(x0, &energy).unwrap();
    let (_, info) = sampler.step(&mut rng, state, &energy).unwrap();
    // Chain 0: 1 + 10 * 1 = 11, fine; chain 1: 100 + 10 / 100 = 100.1, fine. Flip the sign:
    assert_eq!(info.is_divergent, [false, false]);

    let attract = |x: &Tensor<f64>| x.log().sum_axes(&[1], false);
    let state = sampler
        .init(Tensor::from_f64s(&[1.0, 100.0], [2, 1]), &attract)
        .unwrap();
    let (state, info) = sampler.step(&mut rng, state, &attract).unwrap();
    // Chain 0: 1 - 10 * 1 = -9, log of a negative number: NaN, flagged and not replaced.
    assert_eq!(info.is_divergent, [true, false]);
    assert!(state.energy.to_f64s()[0].is_nan());
}

trait NegSum {
    fn neg_sum(&self) -> Tensor<f64>;
}

impl NegSum for Tensor<f64> {
    fn neg_sum(&self) -> Tensor<f64> {
        self.sum_axes(&[1], false).mul_scalar(-1.0)
    }
}

#[test]
fn a_loaded_checkpoint_is_an_energy_the_samplers_take() {
    use ebm::energy::{MlpEnergy, MlpEnergyConfig, load_energy, save_energy};

    let mut rng = StdRng::seed_from_u64(5);
    let mlp = MlpEnergy::<f64>::new(MlpEnergyConfig::new(&[2, 8, 1]), &mut rng).unwrap();
    let path = std::env::temp_dir().join(format!("ebm-core-{}.safetensors", std::process::id()));
    save_energy(&path, &mlp, &Default::default()).unwrap();
    let (loaded, _) = load_energy::<f64>(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    // The boxed model samples exactly as the original: same energies, same chains.
    let sampler = Langevin::new(LangevinConfig::new(0.05)).unwrap();
    let x0 = points(64, 2, 6);
    let chains = |energy: &dyn Energy<f64>| {
        let mut rng = StdRng::seed_from_u64(7);
        let state = sampler.init(x0.clone(), energy).unwrap();
        ebm::sampler::run(&sampler, &mut rng, state, energy, 10)
            .unwrap()
            .0
            .position
            .to_f64s()
    };
    assert_eq!(chains(&mlp), chains(&*loaded));
}
