//! Statistical and numerical checks of the Metropolis-adjusted samplers (MALA, HMC), the
//! leapfrog integrator, unadjusted Langevin's discretisation bias, and dual-averaging warm-up.
//!
//! Recovery tests run many independent chains from a start that is not the target, and take
//! each chain's final position as one draw: the draws are independent, so the Monte Carlo
//! standard errors are the textbook ones. Every statistical tolerance is 5 standard errors
//! (a correct sampler fails one comparison with probability about 6e-7, all of them together
//! below 1e-4) or a Kolmogorov-Smirnov threshold at alpha = 0.001.

use ebm::Error;
use ebm::sampler::{
    ChainState, DualAveraging, Hmc, HmcConfig, Langevin, LangevinConfig, Mala, MalaConfig, Sampler,
    StepInfo, kinetic_energy, leapfrog, run, warmup,
};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Independent chains in the recovery tests.
const N_CHAINS: usize = 4000;

/// A Gaussian target N(mu, Sigma) given by its mean, covariance and precision (row-major).
struct Gaussian {
    mean: Vec<f64>,
    cov: Vec<f64>,
    precision: Vec<f64>,
}

impl Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    /// E(x) = (x - mu)^T P (x - mu) / 2, batched through matmul.
    fn energy(&self) -> impl Fn(&Tensor<f64>) -> Tensor<f64> + Send + Sync + use<> {
        let d = self.dim();
        let mu = Tensor::from_f64s(&self.mean, [1, d]);
        let p = Tensor::from_f64s(&self.precision, [d, d]);
        move |x: &Tensor<f64>| {
            let y = x - &mu;
            (&y.matmul(&p) * &y).sum_axes(&[1], false).mul_scalar(0.5)
        }
    }

    /// Standard deviation 1 and 2, correlation 0.8.
    fn correlated_2d() -> Self {
        let (s1, s2, rho) = (1.0, 2.0, 0.8);
        let cov = vec![s1 * s1, rho * s1 * s2, rho * s1 * s2, s2 * s2];
        let det = cov[0] * cov[3] - cov[1] * cov[2];
        let precision = vec![cov[3] / det, -cov[1] / det, -cov[2] / det, cov[0] / det];
        Gaussian {
            mean: vec![1.0, -2.0],
            cov,
            precision,
        }
    }

    /// Sigma = Q diag(lambda) Q^T with Q a random rotation (Gram-Schmidt of a Gaussian
    /// matrix, seed 7) and lambda log-spaced in [0.5, 3], so P = Q diag(1 / lambda) Q^T needs
    /// no inversion. Condition number 6.
    fn random_10d() -> Self {
        let d = 10;
        let mut rng = StdRng::seed_from_u64(7);
        let a = Tensor::<f64>::randn([d, d], &mut rng).to_f64s();
        let mut q: Vec<Vec<f64>> = Vec::new();
        for i in 0..d {
            let mut v: Vec<f64> = a[i * d..(i + 1) * d].to_vec();
            for u in &q {
                let dot: f64 = v.iter().zip(u).map(|(x, y)| x * y).sum();
                v.iter_mut().zip(u).for_each(|(x, y)| *x -= dot * y);
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            q.push(v.iter().map(|x| x / norm).collect());
        }
        let lambda: Vec<f64> = (0..d)
            .map(|k| 0.5 * 6f64.powf(k as f64 / (d - 1) as f64))
            .collect();
        let form = |f: &dyn Fn(f64) -> f64| {
            let mut m = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    m[i * d + j] = (0..d).map(|k| q[k][i] * f(lambda[k]) * q[k][j]).sum();
                }
            }
            m
        };
        Gaussian {
            mean: (0..d).map(|i| 0.5 * i as f64 - 2.0).collect(),
            cov: form(&|l| l),
            precision: form(&|l| 1.0 / l),
        }
    }
}

/// The normal CDF through erf (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7, far
/// below the KS resolution 1 / sqrt(4000) = 0.016).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// sqrt(n) times the Kolmogorov-Smirnov distance between `z` and N(0, 1).
fn ks_statistic(mut z: Vec<f64>) -> f64 {
    z.sort_by(f64::total_cmp);
    let n = z.len() as f64;
    let d = z
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = normal_cdf(v);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max);
    d * n.sqrt()
}

/// The KS critical value of sqrt(n) D at alpha = 0.001 (asymptotic: 1.949).
const KS_CRITICAL: f64 = 1.95;

/// Checks draws `[n, d]` against the target: each mean within 5 standard errors, each
/// covariance entry within 5 standard errors (the SE of the mean of the products
/// (x_i - mu_i)(x_j - mu_j), which with the true mean are independent with expectation
/// Sigma_ij), and the standardised first coordinate against N(0, 1) by KS at alpha 0.001.
fn check_draws(draws: &[f64], target: &Gaussian, what: &str) {
    let d = target.dim();
    let n = draws.len() / d;
    let nf = n as f64;
    let col = |i: usize| draws.iter().skip(i).step_by(d).copied();

    for i in 0..d {
        let m = col(i).sum::<f64>() / nf;
        let sd = (col(i).map(|x| (x - m).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
        let se = sd / nf.sqrt();
        assert!(
            (m - target.mean[i]).abs() < 5.0 * se,
            "{what}: mean[{i}] = {m}, expected {} +- 5 * {se}",
            target.mean[i]
        );
    }

    for i in 0..d {
        for j in 0..=i {
            let products: Vec<f64> = col(i)
                .zip(col(j))
                .map(|(a, b)| (a - target.mean[i]) * (b - target.mean[j]))
                .collect();
            let c = products.iter().sum::<f64>() / nf;
            let var = products.iter().map(|p| (p - c).powi(2)).sum::<f64>() / (nf - 1.0);
            let se = (var / nf).sqrt();
            let expected = target.cov[i * d + j];
            assert!(
                (c - expected).abs() < 5.0 * se,
                "{what}: cov[{i}][{j}] = {c}, expected {expected} +- 5 * {se}"
            );
        }
    }

    let sd0 = target.cov[0].sqrt();
    let z: Vec<f64> = col(0).map(|x| (x - target.mean[0]) / sd0).collect();
    let ks = ks_statistic(z);
    assert!(
        ks < KS_CRITICAL,
        "{what}: KS sqrt(n) D = {ks} >= {KS_CRITICAL}"
    );
}

/// The final positions of `N_CHAINS` chains started at N(0, I) after `n_steps` steps.
fn final_draws<S>(sampler: &S, target: &Gaussian, n_steps: usize, seed: u64) -> Vec<f64>
where
    S: Sampler<f64, State = ChainState<f64>, Info = StepInfo<f64>>,
{
    let energy = target.energy();
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Tensor::randn([N_CHAINS, target.dim()], &mut rng);
    let state = sampler.init(start, &energy).unwrap();
    let (state, infos) = run(sampler, &mut rng, state, &energy, n_steps).unwrap();
    let divergent: usize = infos.iter().map(StepInfo::n_divergent).sum();
    assert_eq!(divergent, 0, "no divergence expected on a Gaussian");
    state.position.to_f64s()
}

// Step sizes are large enough that the Metropolis correction matters (acceptance 0.6-0.9 at
// stationarity): without it, MALA's variances come out 18-31% too large here and HMC's 10-D
// covariance is off by more than 6 SE, so these tests fail for an unadjusted or mis-corrected
// sampler. Burn-in: the slowest direction relaxes by e^-20 or more.

#[test]
fn mala_recovers_correlated_2d_gaussian() {
    let target = Gaussian::correlated_2d();
    let sampler = Mala::new(MalaConfig::new(0.3)).unwrap();
    let draws = final_draws(&sampler, &target, 600, 1);
    check_draws(&draws, &target, "MALA 2-D");
}

#[test]
fn mala_recovers_10d_gaussian() {
    let target = Gaussian::random_10d();
    let sampler = Mala::new(MalaConfig::new(0.5)).unwrap();
    let draws = final_draws(&sampler, &target, 400, 2);
    check_draws(&draws, &target, "MALA 10-D");
}

#[test]
fn hmc_recovers_correlated_2d_gaussian_with_diagonal_mass() {
    // Inverse mass = the marginal variances; a wrong momentum law (N(0, I) instead of N(0, M))
    // more than doubles the first variance.
    let target = Gaussian::correlated_2d();
    let config = HmcConfig {
        inverse_mass_matrix: Some(vec![1.0, 4.0]),
        ..HmcConfig::new(0.55, 4)
    };
    let sampler = Hmc::new(config).unwrap();
    let draws = final_draws(&sampler, &target, 100, 3);
    check_draws(&draws, &target, "HMC 2-D");
}

#[test]
fn hmc_recovers_10d_gaussian() {
    // Trajectory 3 x 0.6: every eigen-direction turns by 1.0 to 2.6 rad per step, away from
    // pi, where fixed-length HMC on a Gaussian only flips chains about the mean and stops
    // mixing (0.8 x 4 crosses pi and fails this test, as it should).
    let target = Gaussian::random_10d();
    let sampler = Hmc::new(HmcConfig::new(0.6, 3)).unwrap();
    let draws = final_draws(&sampler, &target, 100, 4);
    check_draws(&draws, &target, "HMC 10-D");
}

/// The harmonic oscillator E = x^2 / 2 with unit mass.
fn oscillator(x: &Tensor<f64>) -> Tensor<f64> {
    x.square().sum_axes(&[1], false).mul_scalar(0.5)
}

/// The largest |H(t) - H(0)| over the leapfrog steps of size `h` up to time `t_end`.
fn max_energy_error(h: f64, t_end: f64) -> f64 {
    let mut state = ChainState::new(Tensor::from_f64s(&[1.0], [1, 1]), &oscillator).unwrap();
    let mut p = Tensor::from_f64s(&[0.5], [1, 1]);
    let h0 = (&state.energy + &kinetic_energy(&p, None)).item();
    let mut worst = 0.0f64;
    for _ in 0..(t_end / h).round() as usize {
        (state, p) = leapfrog(&oscillator, &state, &p, h, None, 1).unwrap();
        let err = (&state.energy + &kinetic_energy(&p, None)).item() - h0;
        worst = worst.max(err.abs());
    }
    worst
}

#[test]
fn leapfrog_energy_error_is_second_order_in_the_step() {
    // Over a fixed time (20, about three periods) the energy error of a second-order
    // symplectic scheme is bounded by C h^2: halving h divides it by 4. [3.5, 4.5] separates
    // second order from first (ratio 2) and third (ratio 8).
    let coarse = max_energy_error(0.1, 20.0);
    let fine = max_energy_error(0.05, 20.0);
    let ratio = coarse / fine;
    assert!(coarse < 1e-2, "energy error {coarse} too large for h = 0.1");
    assert!(
        (3.5..=4.5).contains(&ratio),
        "energy error ratio {ratio} ({coarse} / {fine}) is not ~4"
    );
}

#[test]
fn leapfrog_is_reversible() {
    // A non-quadratic energy and a non-identity mass, several chains: forward n steps, negate
    // the momentum, n steps again, negate: back at the start. 1e-12 allows the rounding of
    // 2 * 50 steps in f64 (each about 1e-16 relative), with margin.
    let energy = |x: &Tensor<f64>| {
        let quad = x.square().sum_axes(&[1], false).mul_scalar(0.5);
        &quad + &x.powi(4).sum_axes(&[1], false).mul_scalar(0.1)
    };
    let mut rng = StdRng::seed_from_u64(5);
    let x0 = Tensor::randn([4, 3], &mut rng);
    let p0 = Tensor::randn([4, 3], &mut rng);
    let inverse_mass = Tensor::from_f64s(&[1.0, 0.5, 2.0], [3]);
    let start = ChainState::new(x0.clone(), &energy).unwrap();

    let (mid, p_mid) = leapfrog(&energy, &start, &p0, 0.05, Some(&inverse_mass), 50).unwrap();
    let moved = (&mid.position - &x0).abs().max().item();
    assert!(moved > 0.1, "the trajectory should move ({moved})");
    let (back, p_back) = leapfrog(&energy, &mid, &-&p_mid, 0.05, Some(&inverse_mass), 50).unwrap();

    let dx = (&back.position - &x0).abs().max().item();
    let dp = (&(-&p_back) - &p0).abs().max().item();
    assert!(dx < 1e-12, "position not recovered: {dx}");
    assert!(dp < 1e-12, "momentum not recovered: {dp}");
}

#[test]
fn ula_stationary_variance_matches_discretisation_formula() {
    // On N(0, s^2) ULA is the AR(1) chain x' = (1 - h / s^2) x + sqrt(2 h) z, whose stationary
    // variance is s^2 / (1 - h / (2 s^2)): 4/3 for s = 1, h = 0.5. 20,000 chains after 60 steps
    // (the start's influence decays as 0.5^60). The SE of a sample variance of n Gaussian draws
    // is v sqrt(2 / n) = 0.013; 4/3 is 25 SE from 1, so the check at 5 SE tells the formula
    // from "close to 1".
    let (s, h) = (1.0f64, 0.5);
    let energy = move |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5 / (s * s));
    let expected = s * s / (1.0 - h / (2.0 * s * s));

    let n = 20_000;
    let sampler = Langevin::new(LangevinConfig::new(h)).unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let state = sampler.init(Tensor::zeros([n, 1]), &energy).unwrap();
    let (state, _) = run(&sampler, &mut rng, state, &energy, 60).unwrap();

    let x = state.position.to_f64s();
    let nf = n as f64;
    let mean = x.iter().sum::<f64>() / nf;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let se = expected * (2.0 / nf).sqrt();
    assert!(
        (var - expected).abs() < 5.0 * se,
        "ULA variance {var}, expected {expected} +- 5 * {se}"
    );
    assert!(
        (var - s * s).abs() > 10.0 * se,
        "ULA variance {var} is not distinguishable from s^2 = {}",
        s * s
    );
}

/// The mean acceptance over `n_steps` steps after warm-up from a poor step size.
fn acceptance_after_warmup<S>(sampler: &S, target: &Gaussian, seed: u64) -> (f64, f64)
where
    S: Sampler<f64, State = ChainState<f64>, Info = StepInfo<f64>> + ebm::sampler::StepSized,
{
    let energy = target.energy();
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Tensor::randn([1000, target.dim()], &mut rng);
    let state = sampler.init(start, &energy).unwrap();
    let tuned = warmup(sampler, &mut rng, state, &energy, 300, None).unwrap();
    let (_, infos) = run(&tuned.sampler, &mut rng, tuned.state, &energy, 100).unwrap();
    let rate = infos.iter().map(StepInfo::acceptance_rate).sum::<f64>() / infos.len() as f64;
    (rate, tuned.sampler.default_target_acceptance())
}

#[test]
fn dual_averaging_tunes_mala_to_its_target_acceptance() {
    // 1000 chains x 100 steps: the Monte Carlo error of the mean acceptance is far below the
    // 0.05 tolerance, which is the precision dual averaging's final step size reaches.
    let target = Gaussian::random_10d();
    let sampler = Mala::new(MalaConfig::new(5.0)).unwrap();
    let (rate, goal) = acceptance_after_warmup(&sampler, &target, 8);
    assert!(
        (rate - goal).abs() < 0.05,
        "MALA acceptance {rate}, target {goal}"
    );
}

#[test]
fn dual_averaging_tunes_hmc_to_its_target_acceptance() {
    let target = Gaussian::random_10d();
    let sampler = Hmc::new(HmcConfig::new(0.01, 5)).unwrap();
    let (rate, goal) = acceptance_after_warmup(&sampler, &target, 9);
    assert!(
        (rate - goal).abs() < 0.05,
        "HMC acceptance {rate}, target {goal}"
    );
}

#[test]
fn dual_averaging_follows_algorithm_5() {
    // One update from eps0 = 1 with acceptance 1 and target 0.65 (Hoffman & Gelman 2014):
    // H_1 = -0.35 / 11, log eps_1 = log 10 + sqrt(1) / 0.05 * 0.35 / 11, and the average
    // equals the iterate (weight 1^-0.75 = 1).
    let mut adapt = DualAveraging::new(1.0, 0.65).unwrap();
    adapt.update(1.0);
    let expected = (10f64.ln() + 20.0 * 0.35 / 11.0).exp();
    assert!((adapt.step_size() - expected).abs() < 1e-12);
    assert!((adapt.final_step_size() - expected).abs() < 1e-12);
}

/// The message of a configuration error, which must name `what` and the value.
fn config_message<S: std::fmt::Debug>(result: Result<S, Error>) -> String {
    match result {
        Err(e @ Error::InvalidConfig { .. }) => e.to_string(),
        other => panic!("expected an InvalidConfig error, got {other:?}"),
    }
}

#[test]
fn invalid_configs_are_rejected_naming_the_value() {
    let msg = config_message(Mala::new(MalaConfig::new(0.0)));
    assert!(
        msg.contains("MALA step_size") && msg.contains("got 0"),
        "{msg}"
    );

    let msg = config_message(Hmc::new(HmcConfig::new(0.0, 5)));
    assert!(
        msg.contains("HMC step_size") && msg.contains("got 0"),
        "{msg}"
    );

    let msg = config_message(Hmc::new(HmcConfig::new(0.1, 0)));
    assert!(msg.contains("n_leapfrog_steps"), "{msg}");

    let negative = HmcConfig {
        inverse_mass_matrix: Some(vec![1.0, -2.0]),
        ..HmcConfig::new(0.1, 5)
    };
    let msg = config_message(Hmc::new(negative));
    assert!(
        msg.contains("inverse_mass_matrix[1]") && msg.contains("-2"),
        "{msg}"
    );

    let jittery = HmcConfig {
        step_size_jitter: 1.0,
        ..HmcConfig::new(0.1, 5)
    };
    let msg = config_message(Hmc::new(jittery));
    assert!(
        msg.contains("step_size_jitter") && msg.contains("got 1"),
        "{msg}"
    );

    // The length is checked against the chains at init.
    let wrong_length = HmcConfig {
        inverse_mass_matrix: Some(vec![1.0, 2.0, 3.0]),
        ..HmcConfig::new(0.1, 5)
    };
    let hmc = Hmc::new(wrong_length).unwrap();
    let msg = config_message(hmc.init(Tensor::<f64>::zeros([4, 2]), &oscillator));
    assert!(
        msg.contains("length") && msg.contains("got 3") && msg.contains('2'),
        "{msg}"
    );

    let msg = config_message(DualAveraging::new(0.1, 1.5));
    assert!(
        msg.contains("target_acceptance") && msg.contains("1.5"),
        "{msg}"
    );
}

#[test]
fn mala_rejected_chains_stay_and_accepted_chains_move() {
    // A step size of 1.5 on a standard normal in 5-D accepts some proposals and rejects
    // others: each chain is checked row by row against its state before the step.
    let sampler = Mala::new(MalaConfig::new(1.5)).unwrap();
    let mut rng = StdRng::seed_from_u64(10);
    let before = sampler
        .init(Tensor::randn([200, 5], &mut rng), &oscillator)
        .unwrap();
    let (after, info) = sampler.step(&mut rng, before.clone(), &oscillator).unwrap();

    let rows = |t: &Tensor<f64>| -> Vec<Vec<f64>> {
        let v = t.to_f64s();
        v.chunks(v.len() / 200).map(<[f64]>::to_vec).collect()
    };
    let (x0, x1) = (rows(&before.position), rows(&after.position));
    let (g0, g1) = (rows(&before.grad), rows(&after.grad));
    let (e0, e1) = (before.energy.to_f64s(), after.energy.to_f64s());
    let n_accepted = info.is_accepted.iter().filter(|&&a| a).count();
    assert!(
        (20..180).contains(&n_accepted),
        "need both outcomes, {n_accepted} of 200 accepted"
    );
    for i in 0..200 {
        if info.is_accepted[i] {
            assert_ne!(x1[i], x0[i], "accepted chain {i} did not move");
        } else {
            assert_eq!(x1[i], x0[i], "rejected chain {i} moved");
            assert_eq!(g1[i], g0[i], "rejected chain {i} changed its gradient");
            assert_eq!(e1[i], e0[i], "rejected chain {i} changed its energy");
        }
    }
    assert_eq!(info.energy.to_f64s(), e1);
}

/// One step of `sampler` from 50 chains near x = 3 on the quartic E = sum x^4: with a huge
/// step, proposals land where E ~ 1e12 (energy error far above 1000) or overflow.
fn check_divergences_rejected<S>(name: &str, sampler: &S)
where
    S: Sampler<f64, State = ChainState<f64>, Info = StepInfo<f64>>,
{
    let quartic = |x: &Tensor<f64>| x.powi(4).sum_axes(&[1], false);
    let mut rng = StdRng::seed_from_u64(11);
    let start = Tensor::randn([50, 2], &mut rng).add_scalar(3.0);
    let before = sampler.init(start, &quartic).unwrap();
    let (after, info) = sampler.step(&mut rng, before.clone(), &quartic).unwrap();
    assert_eq!(info.n_divergent(), 50, "{name}: all chains should diverge");
    assert!(
        info.is_accepted.iter().all(|&a| !a),
        "{name}: accepted a divergence"
    );
    assert_eq!(info.acceptance_rate(), 0.0, "{name}");
    assert_eq!(
        after.position.to_f64s(),
        before.position.to_f64s(),
        "{name}"
    );
    assert_eq!(after.grad.to_f64s(), before.grad.to_f64s(), "{name}");
}

#[test]
fn divergent_proposals_are_flagged_and_rejected() {
    check_divergences_rejected("MALA", &Mala::new(MalaConfig::new(100.0)).unwrap());
    check_divergences_rejected("HMC", &Hmc::new(HmcConfig::new(100.0, 3)).unwrap());
}

#[test]
fn step_size_jitter_breaks_a_periodic_trajectory() {
    // On E = x^2 / 2 a trajectory of length pi maps x to -x whatever the momentum: without
    // jitter, 2,000 chains started at x = 1 only flip sign together (leapfrog is not exact, so
    // not quite), and their variance across chains stays near 0. With jitter 0.5 the
    // trajectory length varies and the chains spread to the target N(0, 1): their variance is
    // within 5 standard errors (sqrt(2 / 2000) = 0.032 each) of 1.
    let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
    let variance_after = |jitter: f64| {
        let config = HmcConfig {
            step_size_jitter: jitter,
            ..HmcConfig::new(std::f64::consts::PI / 20.0, 20)
        };
        let hmc = Hmc::new(config).unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let state = hmc.init(Tensor::ones([2000, 1]), &energy).unwrap();
        let (state, _) = run(&hmc, &mut rng, state, &energy, 60).unwrap();
        let x = state.position.to_f64s();
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (x.len() - 1) as f64
    };
    let fixed = variance_after(0.0);
    let jittered = variance_after(0.5);
    assert!(
        fixed < 0.05,
        "without jitter the chains should stay together: {fixed}"
    );
    assert!(
        (jittered - 1.0).abs() < 5.0 * 0.032,
        "with jitter: {jittered}"
    );
}
