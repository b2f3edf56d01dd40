//! Consistency of the score-matching objectives: each, training a learnable Gaussian energy on
//! draws from a known correlated 3-D Gaussian, recovers its mean and covariance (plus sigma^2 I
//! for denoising score matching); Hutchinson's trace is unbiased; multi-scale denoising score
//! matching is minimised by the exact noise-conditional scores; invalid settings are rejected.

use ebm::Error;
use ebm::energy::{EnergyModel, GaussianEnergy, GaussianMixtureEnergy};
use ebm::objective::Objective;
use ebm::objective::multiscale::{
    MultiScaleDenoisingScoreMatching, MultiScaleDenoisingScoreMatchingConfig,
};
use ebm::objective::score_matching::{
    DenoisingScoreMatching, DenoisingScoreMatchingConfig, ExactScoreMatching,
    ExactScoreMatchingConfig, Projection, SlicedScoreMatching, SlicedScoreMatchingConfig,
    TraceEstimator,
};
use ebm_nn::{Adam, AdamConfig, Optimizer};
use ebm_tensor::Tensor;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const MEAN: [f64; 3] = [1.0, -1.0, 0.5];

/// Variances 1, 1.5, 2; correlations 0.5 (x0, x1) and -0.3 (x1, x2).
fn true_covariance() -> [f64; 9] {
    let c01 = 0.5 * 1.5f64.sqrt();
    let c12 = -0.3 * 3.0f64.sqrt();
    [1.0, c01, 0.0, c01, 1.5, c12, 0.0, c12, 2.0]
}

/// `n` draws of the true Gaussian, with their sample mean and covariance.
fn data(n: usize, seed: u64) -> (Tensor<f64>, [f64; 3], [f64; 9]) {
    let truth = GaussianEnergy::<f64>::from_mean_covariance(
        &Tensor::from_f64s(&MEAN, [3]),
        &Tensor::from_f64s(&true_covariance(), [3, 3]),
    )
    .unwrap();
    let x = truth.sample(n, &mut StdRng::seed_from_u64(seed));
    let v = x.to_f64s();
    let mut mean = [0.0; 3];
    for row in v.chunks(3) {
        for j in 0..3 {
            mean[j] += row[j] / n as f64;
        }
    }
    let mut cov = [0.0; 9];
    for row in v.chunks(3) {
        for i in 0..3 {
            for j in 0..3 {
                cov[3 * i + j] += (row[i] - mean[i]) * (row[j] - mean[j]) / n as f64;
            }
        }
    }
    (x, mean, cov)
}

/// Trains a fresh `GaussianEnergy` (mean 0, identity precision) with `objective` and Adam
/// (lr `lr`, dropped tenfold for the last third of the steps to quiet the final iterate).
fn fit<O: Objective<f64, GaussianEnergy<f64>>>(
    objective: &mut O,
    data: &Tensor<f64>,
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
) -> Result<GaussianEnergy<f64>, Error> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut energy = GaussianEnergy::<f64>::new(3)?;
    let mut adam = Adam::new(AdamConfig {
        lr,
        ..AdamConfig::default()
    })?;
    let n = data.dim(0);
    for t in 0..steps {
        adam.set_lr(lr * (1.0 - t as f64 / steps as f64));
        let rows: Vec<usize> = (0..batch).map(|_| rng.random_range(0..n)).collect();
        let x = data.index_select(0, &rows);
        let step = objective.step(&energy, &x, &mut rng)?;
        assert!(step.loss.item().is_finite(), "step {t}: loss not finite");
        let grads = energy.params().backward(&step.loss)?;
        adam.step(energy.params_mut(), &grads);
    }
    Ok(energy)
}

/// Largest absolute differences of the fitted mean and covariance from targets.
fn errors(energy: &GaussianEnergy<f64>, mean: &[f64], cov: &[f64]) -> (f64, f64) {
    let max_diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    (
        max_diff(&energy.mean().to_f64s(), mean),
        max_diff(&energy.covariance().to_f64s(), cov),
    )
}

/// Sampling errors of the data's moments for `N_DATA` draws: the mean of coordinate i has
/// standard error sqrt(Sigma_ii / n) <= sqrt(2 / 20000) = 0.010, and a covariance entry
/// sqrt((Sigma_ii Sigma_jj + Sigma_ij^2) / n) <= sqrt(8 / 20000) = 0.020. The tolerances
/// against the truth are 5 of these (a correct method fails with probability well below 1e-4
/// over the 9 + 3 entries), on top of the optimisation error below.
const N_DATA: usize = 20_000;
const TRUTH_MEAN_TOL: f64 = 0.05;
const TRUTH_COV_TOL: f64 = 0.10;

/// Each method's minimiser on the finite data set is the data's own sample mean and covariance
/// (plus sigma^2 I for DSM): for a Gaussian model, the score-matching loss is
/// 1/2 mean (x - mu)^T P^2 (x - mu) - tr P, minimised at mu = mean, P = S^-1. What separates
/// the fit from them is the noise of the stochastic optimisation (batches of 512, random
/// projections or noise), measured at 0.005-0.025 with these seeds and schedules; 0.05
/// allows twice that.
const SAMPLE_TOL: f64 = 0.05;

/// Trains with `objective` and checks the fit against the data's sample moments and against
/// the truth, with `extra_variance` added to the covariance targets' diagonal.
fn check_consistency<O: Objective<f64, GaussianEnergy<f64>>>(
    objective: &mut O,
    extra_variance: f64,
    seed: u64,
) -> Result<GaussianEnergy<f64>, Error> {
    let (x, sample_mean, mut sample_cov) = data(N_DATA, 1);
    let mut true_cov = true_covariance();
    for i in 0..3 {
        sample_cov[4 * i] += extra_variance;
        true_cov[4 * i] += extra_variance;
    }
    let energy = fit(objective, &x, 2000, 512, 0.03, seed)?;

    let (mean_err, cov_err) = errors(&energy, &sample_mean, &sample_cov);
    assert!(
        mean_err < SAMPLE_TOL,
        "mean off the sample mean by {mean_err}"
    );
    assert!(
        cov_err < SAMPLE_TOL,
        "covariance off the sample one by {cov_err}"
    );
    let (mean_err, cov_err) = errors(&energy, &MEAN, &true_cov);
    assert!(
        mean_err < TRUTH_MEAN_TOL,
        "mean off the truth by {mean_err}"
    );
    assert!(
        cov_err < TRUTH_COV_TOL,
        "covariance off the truth by {cov_err}"
    );
    Ok(energy)
}

#[test]
fn exact_score_matching_recovers_gaussian_moments() -> Result<(), Error> {
    let mut esm = ExactScoreMatching::new(ExactScoreMatchingConfig::default())?;
    check_consistency(&mut esm, 0.0, 2).map(|_| ())
}

#[test]
fn sliced_score_matching_recovers_gaussian_moments() -> Result<(), Error> {
    let mut ssm = SlicedScoreMatching::new(SlicedScoreMatchingConfig {
        n_projections: 2,
        projection: Projection::Gaussian,
        variance_reduced: false,
    })?;
    check_consistency(&mut ssm, 0.0, 3).map(|_| ())
}

#[test]
fn variance_reduced_sliced_score_matching_recovers_gaussian_moments() -> Result<(), Error> {
    let mut ssm_vr = SlicedScoreMatching::new(SlicedScoreMatchingConfig::default())?;
    check_consistency(&mut ssm_vr, 0.0, 4).map(|_| ())
}

#[test]
fn denoising_score_matching_recovers_the_noise_convolved_gaussian() -> Result<(), Error> {
    // DSM's minimiser is the score of the data convolved with N(0, sigma^2 I): for Gaussian
    // data, N(mu, Sigma + sigma^2 I). sigma = 0.4 makes that bias (0.16 on the diagonal)
    // larger than the tolerance, so the test tells it apart from Sigma itself.
    let sigma = 0.4;
    let mut dsm = DenoisingScoreMatching::new(DenoisingScoreMatchingConfig { sigma })?;
    let energy = check_consistency(&mut dsm, sigma * sigma, 5)?;
    let (_, cov_err) = errors(&energy, &MEAN, &true_covariance());
    assert!(
        cov_err > TRUTH_COV_TOL,
        "the fit should carry the bias sigma^2 I; it is off Sigma by only {cov_err}"
    );
    Ok(())
}

/// A non-quadratic energy whose Hessian has off-diagonal entries and varies with x:
/// E(x) = 1/2 |x A|^2 + 0.1 sum_j x_j^4.
fn quartic_energy(x: &Tensor<f64>) -> Tensor<f64> {
    let a = Tensor::from_f64s(&[1.0, 0.5, 0.0, 0.3, 1.0, -0.4, 0.0, 0.2, 1.2], [3, 3]);
    let quadratic = x.matmul(&a).square().sum_axes(&[1], false).mul_scalar(0.5);
    &quadratic + &x.square().square().sum_axes(&[1], false).mul_scalar(0.1)
}

#[test]
fn hutchinson_exact_score_matching_is_unbiased() -> Result<(), Error> {
    let mut rng = StdRng::seed_from_u64(6);
    let x = Tensor::<f64>::randn([32, 3], &mut rng);
    let energy = quartic_energy;
    let mut exact = ExactScoreMatching::new(ExactScoreMatchingConfig::default())?;
    let target = exact.step(&energy, &x, &mut rng)?.loss.item();

    // The free function computes the same loss.
    let free = ebm::objective::score_matching::exact_score_matching(&energy, &x)?.item();
    assert!((free - target).abs() < 1e-10, "{free} vs {target}");

    // 400 independent one-probe estimates: their mean is within 5 standard errors of the
    // exact loss (a correct estimator fails with probability < 1e-6), and they do vary.
    for probe in [Projection::Rademacher, Projection::Gaussian] {
        let mut hutchinson = ExactScoreMatching::new(ExactScoreMatchingConfig {
            trace: TraceEstimator::Hutchinson { n_probes: 1, probe },
        })?;
        let estimates: Vec<f64> = (0..400)
            .map(|_| Ok(hutchinson.step(&energy, &x, &mut rng)?.loss.item()))
            .collect::<Result<_, Error>>()?;
        let r = estimates.len() as f64;
        let mean = estimates.iter().sum::<f64>() / r;
        let var = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (r - 1.0);
        let se = (var / r).sqrt();
        assert!(se > 1e-6, "{probe:?}: the estimates do not vary");
        assert!(
            (mean - target).abs() < 5.0 * se,
            "{probe:?}: mean {mean} vs exact {target}, standard error {se}"
        );
    }
    Ok(())
}

/// Two well-separated components in 2-D.
fn two_component_mixture(shift: f64, std_scale: f64) -> GaussianMixtureEnergy<f64> {
    GaussianMixtureEnergy::from_parts(
        &Tensor::from_f64s(&[0.4, 0.6], [2]),
        &Tensor::from_f64s(&[-1.5 + shift, 0.0, 1.5 + shift, 0.5], [2, 2]),
        &Tensor::from_f64s(&[0.5 * std_scale, 0.3 * std_scale], [2]),
    )
    .unwrap()
}

fn multiscale_config() -> MultiScaleDenoisingScoreMatchingConfig {
    MultiScaleDenoisingScoreMatchingConfig {
        sigma_max: 2.0,
        sigma_min: 0.05,
        n_levels: 5,
    }
}

#[test]
fn multiscale_dsm_is_minimised_by_the_exact_noise_conditional_scores() -> Result<(), Error> {
    // The mixture's noise-conditional energy E(x, sigma) is the data density convolved with
    // N(0, sigma^2 I): the exact minimiser of every level. For any other score s, the expected
    // excess loss is 1/2 E sigma^2 ||s - s*||^2 > 0. With the same levels and noise for every
    // model (paired differences), each alternative must lose by more than 5 standard errors.
    let truth = two_component_mixture(0.0, 1.0);
    let mut rng = StdRng::seed_from_u64(7);
    let x = truth.sample(4000, &mut rng);
    let msdsm = MultiScaleDenoisingScoreMatching::new(multiscale_config())?;
    let levels: Vec<usize> = (0..4000).map(|_| rng.random_range(0..5)).collect();
    let z = Tensor::<f64>::randn([4000, 2], &mut rng);
    let best = msdsm.per_sample_loss(&truth, &x, &levels, &z)?.to_f64s();

    let shifted = two_component_mixture(0.2, 1.0);
    let wider = two_component_mixture(0.0, 1.3);
    // the clean data score at every level, blind to sigma
    let blind = |x: &Tensor<f64>, _sigma: &Tensor<f64>| ebm::energy::Energy::energy(&truth, x);
    let alternatives: [(&str, Vec<f64>); 3] = [
        (
            "shifted means",
            msdsm.per_sample_loss(&shifted, &x, &levels, &z)?.to_f64s(),
        ),
        (
            "wider components",
            msdsm.per_sample_loss(&wider, &x, &levels, &z)?.to_f64s(),
        ),
        (
            "sigma-blind scores",
            msdsm.per_sample_loss(&blind, &x, &levels, &z)?.to_f64s(),
        ),
    ];
    for (name, loss) in alternatives {
        let d: Vec<f64> = loss.iter().zip(&best).map(|(a, b)| a - b).collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let se = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        assert!(
            mean > 5.0 * se,
            "{name}: excess loss {mean}, standard error {se}"
        );
    }
    Ok(())
}

#[test]
fn multiscale_dsm_recovers_a_gaussian_mixture() -> Result<(), Error> {
    let truth = two_component_mixture(0.0, 1.0);
    let mut rng = StdRng::seed_from_u64(8);
    let data = truth.sample(20_000, &mut rng);
    let mut model = two_component_mixture(0.4, 1.8);
    let mut msdsm = MultiScaleDenoisingScoreMatching::new(multiscale_config())?;
    let mut adam = Adam::new(AdamConfig {
        lr: 0.02,
        ..AdamConfig::default()
    })?;
    let steps = 1500;
    for t in 0..steps {
        adam.set_lr(0.02 * (1.0 - t as f64 / steps as f64));
        let rows: Vec<usize> = (0..256).map(|_| rng.random_range(0..20_000)).collect();
        let step = msdsm.step(&model, &data.index_select(0, &rows), &mut rng)?;
        let grads = model.params().backward(&step.loss)?;
        adam.step(model.params_mut(), &grads);
    }

    // Sampling errors with 20,000 draws: a component mean ~ 0.5 / sqrt(8000) = 0.006, a std
    // ~ 0.5 / sqrt(16000) = 0.004, a weight sqrt(0.24 / 20000) = 0.004; the optimisation adds
    // about as much (measured errors below 0.01). The tolerances are 5 times these, and far
    // below the start's errors (0.4 on the means, 80% on the stds).
    let close = |what: &str, fit: Vec<f64>, truth: Vec<f64>, tol: f64| {
        for (f, t) in fit.iter().zip(&truth) {
            assert!(
                (f - t).abs() < tol,
                "{what}: fitted {fit:?}, true {truth:?}"
            );
        }
    };
    close(
        "means",
        model.means().to_f64s(),
        truth.means().to_f64s(),
        0.05,
    );
    close("stds", model.stds().to_f64s(), truth.stds().to_f64s(), 0.03);
    close(
        "weights",
        model.weights().to_f64s(),
        truth.weights().to_f64s(),
        0.03,
    );
    Ok(())
}

#[test]
fn invalid_settings_are_rejected_naming_the_value() {
    let message = |e: Error| e.to_string();
    let dsm = DenoisingScoreMatching::new(DenoisingScoreMatchingConfig { sigma: -0.5 });
    let text = message(dsm.unwrap_err());
    assert!(text.contains("sigma") && text.contains("-0.5"), "{text}");

    let ssm = SlicedScoreMatching::new(SlicedScoreMatchingConfig {
        n_projections: 0,
        ..SlicedScoreMatchingConfig::default()
    });
    let text = message(ssm.unwrap_err());
    assert!(
        text.contains("n_projections") && text.contains('0'),
        "{text}"
    );

    let esm = ExactScoreMatching::new(ExactScoreMatchingConfig {
        trace: TraceEstimator::Hutchinson {
            n_probes: 0,
            probe: Projection::Gaussian,
        },
    });
    let text = message(esm.unwrap_err());
    assert!(text.contains("n_probes"), "{text}");

    let bad = [
        (
            MultiScaleDenoisingScoreMatchingConfig {
                n_levels: 0,
                ..multiscale_config()
            },
            "n_levels",
        ),
        (
            MultiScaleDenoisingScoreMatchingConfig {
                sigma_min: 0.0,
                ..multiscale_config()
            },
            "sigma_min",
        ),
        (
            MultiScaleDenoisingScoreMatchingConfig {
                sigma_max: 0.01,
                ..multiscale_config()
            },
            "0.01",
        ),
    ];
    for (config, named) in bad {
        let text = message(MultiScaleDenoisingScoreMatching::new(config).unwrap_err());
        assert!(text.contains(named), "{text}");
    }
}

#[test]
fn configs_read_from_json_and_reject_unknown_fields() {
    let ssm: SlicedScoreMatchingConfig =
        serde_json::from_str(r#"{"projection": "gaussian", "n_projections": 3}"#).unwrap();
    assert_eq!(ssm.projection, Projection::Gaussian);
    assert_eq!(ssm.n_projections, 3);
    assert!(ssm.variance_reduced, "unset fields keep their defaults");
    let esm: ExactScoreMatchingConfig = serde_json::from_str(
        r#"{"trace": {"hutchinson": {"n_probes": 2, "probe": "rademacher"}}}"#,
    )
    .unwrap();
    assert_eq!(
        esm.trace,
        TraceEstimator::Hutchinson {
            n_probes: 2,
            probe: Projection::Rademacher
        }
    );
    assert!(serde_json::from_str::<DenoisingScoreMatchingConfig>(r#"{"sigmaa": 1}"#).is_err());
    let msdsm: MultiScaleDenoisingScoreMatchingConfig =
        serde_json::from_str(r#"{"n_levels": 3}"#).unwrap();
    let sampler = msdsm.annealed_langevin_config();
    assert_eq!(
        sampler.sigmas,
        MultiScaleDenoisingScoreMatching::new(msdsm)
            .unwrap()
            .sigmas()
    );
    assert!((sampler.sigmas[1] - (3.0f64 * 0.01).sqrt()).abs() < 1e-12);
}
