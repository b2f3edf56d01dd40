//! Annealed Langevin dynamics on a well-separated Gaussian mixture with exact
//! noise-conditional energies: it recovers the mixture weights, where plain Langevin with the
//! same budget keeps the split of its starting points.

use ebm::energy::AtNoiseLevel;
use ebm::sampler::{
    AnnealedLangevin, AnnealedLangevinConfig, Langevin, LangevinConfig, Sampler, run,
};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The example of Song & Ermon 2019 (section 3.2): 0.2 N((-5, -5), I) + 0.8 N((5, 5), I).
const MODES: [(f64, [f64; 2]); 2] = [(0.2, [-5.0, -5.0]), (0.8, [5.0, 5.0])];

/// The exact energy of the mixture convolved with N(0, sigma^2 I):
/// E(x, sigma) = -logsumexp_k(log w_k + log N(x; mu_k, (1 + sigma^2) I)).
fn mixture_energy(x: &Tensor<f64>, sigma: &Tensor<f64>) -> Tensor<f64> {
    let var = sigma.square().add_scalar(1.0);
    let log_norm = var.mul_scalar(2.0 * std::f64::consts::PI).log();
    let components: Vec<Tensor<f64>> = MODES
        .iter()
        .map(|(w, mu)| {
            let mu = Tensor::from_f64s(mu, [1, 2]);
            let d2 = (x - &mu).square().sum_axes(&[1], false);
            (&(&d2 / &var.mul_scalar(2.0)) + &log_norm).rsub_scalar(w.ln())
        })
        .collect();
    -Tensor::stack(&components, 1).logsumexp(1, false)
}

/// The fraction of chains nearer the mode at (5, 5) than the one at (-5, -5).
fn fraction_near_heavy_mode(x: &Tensor<f64>) -> f64 {
    let v = x.to_f64s();
    let near = v.chunks(2).filter(|p| p[0] + p[1] > 0.0).count();
    near as f64 / (v.len() / 2) as f64
}

/// Song & Ermon's setting for this example (10 levels from 20 down to 1, epsilon = 0.1),
/// with T = 300 steps per level rather than their 100: with 100 the chains do not quite
/// settle at each level and the heavy mode gets 0.775-0.783 of them (4 seeds), a bias of the
/// short schedule; with 300 it gets 0.797 (2 seeds).
fn config() -> AnnealedLangevinConfig {
    AnnealedLangevinConfig {
        steps_per_level: 300,
        step_size: 0.1,
        ..AnnealedLangevinConfig::geometric(20.0, 1.0, 10)
    }
}

const N_CHAINS: usize = 2000;

/// 5 binomial standard errors of a fraction near 0.8 from 2000 chains:
/// 5 sqrt(0.8 * 0.2 / 2000) = 0.045; a correct sampler misses it with probability < 1e-6.
/// (At 0.5 the standard error is 0.011, so 0.045 is over 4 of those there too.)
const TOLERANCE: f64 = 0.045;

#[test]
fn annealed_langevin_recovers_mixture_weights_where_plain_langevin_does_not() {
    let mut rng = StdRng::seed_from_u64(0);
    let x0 = Tensor::<f64>::rand_uniform([N_CHAINS, 2], -8.0, 8.0, &mut rng);
    let start = fraction_near_heavy_mode(&x0);

    // Annealed: the large noise levels let the chains cross between the modes.
    let sampler = AnnealedLangevin::new(config()).unwrap();
    let (x, info) = sampler
        .sample(&mut rng, x0.clone(), &mixture_energy)
        .unwrap();
    assert_eq!(info.levels.len(), 10);
    assert_eq!(info.n_divergent(), 0);
    let annealed = fraction_near_heavy_mode(&x);
    assert!(
        (annealed - 0.8).abs() < TOLERANCE,
        "annealed Langevin: {annealed} of the chains near the weight-0.8 mode"
    );

    // Plain Langevin on the sigma_min energy, with the step of the last level and the same
    // number of steps: the chains stay in the basin they start in.
    let at_min = AtNoiseLevel::new(&mixture_energy, 1.0);
    let plain = Langevin::new(LangevinConfig::new(0.1 / 2.0)).unwrap();
    let state = plain.init(x0, &at_min).unwrap();
    let (state, _) = run(&plain, &mut rng, state, &at_min, config().n_steps()).unwrap();
    let plain = fraction_near_heavy_mode(&state.position);
    assert!(
        (plain - 0.8).abs() > TOLERANCE,
        "plain Langevin: {plain} near the weight-0.8 mode (annealed: {annealed})"
    );
    assert!(
        (plain - start).abs() < TOLERANCE,
        "plain Langevin: {plain} near the weight-0.8 mode, {start} at the start"
    );
}

#[test]
fn stepwise_run_matches_sample_and_moves_through_the_levels() {
    let config = AnnealedLangevinConfig {
        steps_per_level: 7,
        denoise_last: true,
        ..config()
    };
    let sampler = AnnealedLangevin::new(config.clone()).unwrap();
    let x0 = Tensor::<f64>::rand_uniform([50, 2], -8.0, 8.0, &mut StdRng::seed_from_u64(1));

    let mut rng = StdRng::seed_from_u64(2);
    let mut state = sampler.init(x0.clone(), &mixture_energy).unwrap();
    for k in 0..config.n_steps() {
        assert_eq!((state.level, state.step), (k / 7, k % 7));
        assert!(!sampler.is_finished(&state));
        state = sampler.step(&mut rng, state, &mixture_energy).unwrap().0;
    }
    assert!(sampler.is_finished(&state));
    assert_eq!((state.level, state.step), (9, 7));

    // Denoising at sigma_L = 1: x + sigma^2 s(x, sigma), with the score recomputed here.
    let at_min = AtNoiseLevel::new(&mixture_energy, 1.0);
    let score = ebm::energy::Energy::score(&at_min, &state.chains.position).unwrap();
    let denoised = &state.chains.position + &score;

    let (x, info) = sampler
        .sample(&mut StdRng::seed_from_u64(2), x0, &mixture_energy)
        .unwrap();
    assert!(info.denoised);
    assert_eq!(x.to_f64s(), denoised.to_f64s());
    assert_eq!(info.levels[9].sigma, 1.0);
    assert!((info.levels[0].step_size - 0.1 * 400.0).abs() < 1e-12);
}
