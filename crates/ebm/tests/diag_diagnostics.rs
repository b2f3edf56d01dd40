//! Chain diagnostics: effective sample size and R-hat on chains with known answers, and the
//! trace of a sampler whose chains are AR(1) processes.
//!
//! Tolerances come from the spread of the estimators themselves, measured over 100 or 200
//! replicates of each setting with other seeds (the relative standard deviations quoted below); each bound
//! sits at least 4 of those standard deviations from the theoretical value, so a correct
//! estimator fails with probability below about 1e-4, while the usual mistakes (ignoring the
//! autocorrelation, a wrong factor of 2 in tau) are off by far more.

use ebm::sampler::{
    Langevin, LangevinConfig, Sampler, bulk_effective_sample_size, effective_sample_size,
    rank_normalized_split_rhat, split_rhat, trace,
};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// A stationary AR(1) chain x_t = rho x_{t-1} + sqrt(1 - rho^2) z_t with unit variance.
fn ar1(rng: &mut StdRng, n: usize, rho: f64) -> Vec<f64> {
    let mut x: f64 = StandardNormal.sample(rng);
    let scale = (1.0 - rho * rho).sqrt();
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            x = rho * x + scale * z;
            x
        })
        .collect()
}

fn normal_chains(rng: &mut StdRng, n_chains: usize, n: usize) -> Vec<Vec<f64>> {
    (0..n_chains).map(|_| ar1(rng, n, 0.0)).collect()
}

#[test]
fn ess_of_independent_draws_is_about_the_number_of_draws() {
    let mut rng = StdRng::seed_from_u64(10);
    let chains = normal_chains(&mut rng, 4, 1000);

    // 4000 draws: over 200 replicates the estimate had mean 3929 and sd 157 (4%); 16% is
    // 4 sd.
    for ess in [
        effective_sample_size(&chains).unwrap(),
        bulk_effective_sample_size(&chains).unwrap(),
    ] {
        assert!(
            (ess / 4000.0 - 1.0).abs() < 0.16,
            "ESS {ess} of 4000 iid draws"
        );
    }
}

#[test]
fn bulk_ess_handles_heavy_tails() {
    // Independent Cauchy draws (ratios of normals): the mean does not exist, but the ranks
    // are those of any iid sample, so the bulk ESS is about the number of draws (same
    // spread as the normal case: 16% is 4 sd).
    let mut rng = StdRng::seed_from_u64(11);
    let chains: Vec<Vec<f64>> = (0..4)
        .map(|_| {
            (0..1000)
                .map(|_| {
                    let (a, b): (f64, f64) = (
                        StandardNormal.sample(&mut rng),
                        StandardNormal.sample(&mut rng),
                    );
                    a / b
                })
                .collect()
        })
        .collect();
    let ess = bulk_effective_sample_size(&chains).unwrap();
    assert!(
        (ess / 4000.0 - 1.0).abs() < 0.16,
        "bulk ESS {ess} of 4000 Cauchy draws"
    );
}

#[test]
fn ess_of_ar1_chains_matches_n_times_1_minus_rho_over_1_plus_rho() {
    let mut rng = StdRng::seed_from_u64(12);
    let rho = 0.9;
    let chains: Vec<Vec<f64>> = (0..4).map(|_| ar1(&mut rng, 20_000, rho)).collect();
    let expected = 80_000.0 * (1.0 - rho) / (1.0 + rho);

    // Relative sd of the estimate over 100 replicates: 3.8%; 16% is over 4 sd (ignoring the
    // correlation would give 19 times more).
    let ess = effective_sample_size(&chains).unwrap();
    assert!(
        (ess / expected - 1.0).abs() < 0.16,
        "ESS {ess}, expected {expected}"
    );

    // A single chain with rho = 0.5: relative sd 4.2% over 200 replicates; 17% is 4 sd.
    let chain = vec![ar1(&mut rng, 20_000, 0.5)];
    let ess = effective_sample_size(&chain).unwrap();
    let expected = 20_000.0 / 3.0;
    assert!(
        (ess / expected - 1.0).abs() < 0.17,
        "ESS {ess}, expected {expected}"
    );
}

#[test]
fn rhat_is_near_one_for_chains_of_one_distribution() {
    let mut rng = StdRng::seed_from_u64(13);
    let chains = normal_chains(&mut rng, 4, 1000);

    // Over 200 replicates: mean 1.0000 (1.0003 rank-normalised), sd 0.00055, largest
    // 1.0024; 1.01 is the threshold of Vehtari et al.
    let plain = split_rhat(&chains).unwrap();
    let ranked = rank_normalized_split_rhat(&chains).unwrap();
    assert!(
        plain < 1.01 && ranked < 1.01,
        "R-hat {plain}, rank-normalised {ranked}"
    );
}

#[test]
fn rhat_flags_chains_with_different_means() {
    let mut rng = StdRng::seed_from_u64(14);
    let mut chains = normal_chains(&mut rng, 4, 1000);
    chains[3].iter_mut().for_each(|x| *x += 2.0);

    // Chain means 0, 0, 0, 2 in unit variance: R-hat^2 ~ 1 + var(split means) = 1 + 6/7,
    // so R-hat ~ 1.36, far above 1.1 whatever the noise.
    let plain = split_rhat(&chains).unwrap();
    let ranked = rank_normalized_split_rhat(&chains).unwrap();
    assert!(
        plain > 1.1 && ranked > 1.1,
        "R-hat {plain}, rank-normalised {ranked}"
    );
}

#[test]
fn rhat_flags_a_trend_within_chains() {
    // Every chain drifts from -1 to 1: the chains agree with each other, but their halves do
    // not, which is what splitting them catches.
    let mut rng = StdRng::seed_from_u64(15);
    let mut chains = normal_chains(&mut rng, 4, 1000);
    for chain in &mut chains {
        for (t, x) in chain.iter_mut().enumerate() {
            *x = 0.5 * *x + 2.0 * t as f64 / 1000.0 - 1.0;
        }
    }
    assert!(split_rhat(&chains).unwrap() > 1.1);
}

#[test]
fn only_the_rank_normalised_rhat_flags_chains_with_different_scales() {
    let mut rng = StdRng::seed_from_u64(16);
    let mut chains = normal_chains(&mut rng, 4, 1000);
    chains[3].iter_mut().for_each(|x| *x *= 4.0);

    // Same means: the plain R-hat sees nothing (its between-chain term is noise of order
    // 1 / n); the folded draws |x - median| differ in location, which the rank-normalised
    // R-hat sees.
    let plain = split_rhat(&chains).unwrap();
    let ranked = rank_normalized_split_rhat(&chains).unwrap();
    assert!(plain < 1.01, "plain R-hat {plain}");
    assert!(ranked > 1.1, "rank-normalised R-hat {ranked}");
}

#[test]
fn trace_of_langevin_on_a_gaussian_has_the_ess_of_its_ar1_chains() {
    // ULA with step h on N(0, I) is x' = (1 - h) x + sqrt(2 h) z: an AR(1) process with
    // rho = 1 - h and stationary variance 1 / (1 - h / 2). Start the chains there.
    let h = 0.2;
    let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
    let sampler = Langevin::new(LangevinConfig::new(h)).unwrap();
    let mut rng = StdRng::seed_from_u64(17);
    let x0 = Tensor::<f64>::randn([4, 3], &mut rng).mul_scalar((1.0 / (1.0 - h / 2.0)).sqrt());
    let state = sampler.init(x0, &energy).unwrap();
    let (state, trace) = trace(&sampler, &mut rng, state, &energy, 20_001, 2).unwrap();

    // 20_001 steps thinned by 2: 10_000 draws of rho^2 = 0.64.
    assert_eq!(trace.draws.dims(), &[10_000, 4, 3]);
    assert_eq!(state.position.dims(), &[4, 3]);
    assert_eq!(trace.acceptance.n_steps, 20_001);
    assert_eq!(trace.acceptance.mean, 1.0);
    assert_eq!(trace.acceptance.per_chain, [1.0; 4]);
    assert_eq!(trace.acceptance.n_divergent, 0);

    // Expected ESS 40_000 * 0.36 / 1.64 = 8780 per component; the relative sd of the
    // estimate for 4 AR(1) chains of 10_000 draws with rho = 0.64 is 3.2% (100 replicates),
    // so 15% is over 4 sd. Ignoring the thinning (rho = 0.8) would give 4444: far outside.
    let rho2: f64 = (1.0 - h) * (1.0 - h);
    let expected = 40_000.0 * (1.0 - rho2) / (1.0 + rho2);
    for ess in trace.effective_sample_size().unwrap() {
        assert!(
            (ess / expected - 1.0).abs() < 0.15,
            "ESS {ess}, expected {expected}"
        );
    }
    for rhat in trace.rank_normalized_split_rhat().unwrap() {
        assert!(rhat < 1.01, "R-hat {rhat}");
    }
}

#[test]
fn trace_refuses_a_thinning_that_records_nothing() {
    let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false);
    let sampler = Langevin::new(LangevinConfig::new(0.1)).unwrap();
    let mut rng = StdRng::seed_from_u64(18);
    for (n_steps, thin) in [(10, 0), (10, 11)] {
        let state = sampler.init(Tensor::zeros([2, 2]), &energy).unwrap();
        let err = trace(&sampler, &mut rng, state, &energy, n_steps, thin).unwrap_err();
        assert!(err.to_string().contains("thin"), "{err}");
    }
}
