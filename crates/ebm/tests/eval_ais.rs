//! Annealed importance sampling brackets a known log Z, and the bracket narrows as K grows.

use ebm::energy::GaussianEnergy;
use ebm::eval::{Ais, AisConfig, AisTransition, AisTuning};
use ebm::sampler::MalaConfig;
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

const DIM: usize = 64;

/// A correlated 64-D Gaussian: covariance A A^T / d + 0.5 I with A standard normal, mean
/// drawn from N(0, 1); its log Z is known in closed form.
fn target(rng: &mut StdRng) -> GaussianEnergy<f64> {
    let a = Tensor::<f64>::randn([DIM, DIM], rng);
    let cov = a.matmul_t(&a, false, true).mul_scalar(1.0 / DIM as f64);
    let eye: Vec<f64> = (0..DIM * DIM)
        .map(|k| if k % DIM == k / DIM { 0.5 } else { 0.0 })
        .collect();
    let cov = &cov + &Tensor::from_f64s(&eye, [DIM, DIM]);
    let mean = Tensor::<f64>::randn([DIM], rng);
    GaussianEnergy::from_mean_covariance(&mean, &cov).unwrap()
}

/// The base N(0, 3 I): a different mean and shape, wider than the target on every axis.
fn base() -> GaussianEnergy<f64> {
    let cov: Vec<f64> = (0..DIM * DIM)
        .map(|k| if k % DIM == k / DIM { 3.0 } else { 0.0 })
        .collect();
    GaussianEnergy::from_mean_covariance(
        &Tensor::zeros([DIM]),
        &Tensor::from_f64s(&cov, [DIM, DIM]),
    )
    .unwrap()
}

#[test]
fn forward_and_reverse_ais_bracket_the_log_normalizer_of_a_64d_gaussian() {
    let mut rng = StdRng::seed_from_u64(11);
    let target = target(&mut rng);
    let base = base();
    let log_z = target.log_normalizer();
    let exact = target.sample(256, &mut rng);

    // K = 100, 300, 1000 temperatures, 256 chains each way, MALA at step 0.3 (acceptance
    // about 0.74). Measured (seed 11, log Z = 64.506): log-mean-exp bounds 64.55 / 65.72,
    // 64.40 / 64.61, 64.54 / 64.48 (se 0.34 down to 0.06); per-chain bounds (the mean of the
    // log-weights, looser but with a plain CLT error) 59.91 / 68.81, 62.89 / 65.99,
    // 64.06 / 64.87: a gap of 8.9, 3.1, 0.80 nats, falling as 1 / K.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut gaps = Vec::new();
    for k in [100, 300, 1000] {
        let ais = Ais::new(AisConfig {
            n_temperatures: k,
            n_chains: 256,
            transition: AisTransition::Mala(MalaConfig::new(0.3)),
            ..AisConfig::default()
        })
        .unwrap();
        let bounds = ais
            .bounds(&mut rng, &target, &base, &[DIM], Some(&exact), true)
            .unwrap();
        let (lower, upper) = (&bounds.lower, bounds.upper.as_ref().unwrap());
        assert!(bounds.upper_is_exact);

        // The estimates are stochastic bounds: a draw may cross log Z by its own noise, so
        // allow 3 standard errors (the delta-method error, honest once the ESS is above a few).
        assert!(
            lower.log_z < log_z + 3.0 * lower.standard_error,
            "K {k}: forward {} above log Z {log_z}",
            lower.log_z
        );
        assert!(
            upper.log_z > log_z - 3.0 * upper.standard_error,
            "K {k}: reverse {} below log Z {log_z}",
            upper.log_z
        );

        // The per-chain bounds hold with a margin of many standard errors: each is a mean of
        // 256 log-weights with sd about sqrt(2 gap), so its error is below 0.1 nats at every
        // K, and the measured margins are 0.44 nats and more.
        let l1 = base.log_normalizer() + mean(&lower.log_weights);
        let u1 = base.log_normalizer() - mean(&upper.log_weights);
        assert!(
            l1 < log_z && log_z < u1,
            "K {k}: {l1} < {log_z} < {u1} fails"
        );
        gaps.push(u1 - l1);

        // At K = 1000 both estimates are within 0.3 nats (4 of their standard errors).
        if k == 1000 {
            assert!((lower.log_z - log_z).abs() < 0.3, "forward {}", lower.log_z);
            assert!((upper.log_z - log_z).abs() < 0.3, "reverse {}", upper.log_z);
            assert!(lower.effective_sample_size > 20.0);
        }
    }

    // The gap falls about 3-fold per 3.3-fold K (measured 2.9 and 3.9); 2 leaves room for
    // noise while ruling out a gap that does not shrink.
    assert!(
        gaps[0] > 2.0 * gaps[1] && gaps[1] > 2.0 * gaps[2],
        "gaps {gaps:?}"
    );
}

/// N(0, variance I) in `DIM` dimensions.
fn isotropic(variance: f64) -> GaussianEnergy<f64> {
    let cov: Vec<f64> = (0..DIM * DIM)
        .map(|k| if k % DIM == k / DIM { variance } else { 0.0 })
        .collect();
    GaussianEnergy::from_mean_covariance(
        &Tensor::zeros([DIM]),
        &Tensor::from_f64s(&cov, [DIM, DIM]),
    )
    .unwrap()
}

#[test]
fn tuned_step_sizes_follow_the_scale_of_the_path_and_keep_the_bracket() {
    // Base N(0, 4 I), target N(0, 0.01 I): along the geometric path the precision is
    // lambda(beta) = (1 - beta) / 4 + beta / 0.01, 400-fold from end to end. MALA on
    // N(0, I / lambda) with step h is MALA on N(0, I) with step h lambda, so its acceptance
    // depends on h lambda alone: the tuned steps must keep h_k lambda_k about constant while
    // lambda_k spans 400. The pilot starts from a step 100 times too small.
    let (base, target) = (isotropic(4.0), isotropic(0.01));
    let log_z = target.log_normalizer();
    let mut rng = StdRng::seed_from_u64(5);
    let ais = Ais::new(AisConfig {
        n_temperatures: 1000,
        n_chains: 256,
        transition: AisTransition::Mala(MalaConfig::new(0.01)),
        ..AisConfig::default()
    })
    .unwrap();
    assert!(ais.step_sizes().is_none());
    let tuning = AisTuning::default();
    let tuned = ais
        .tuned(&mut rng, &target, &base, &[DIM], &tuning)
        .unwrap();
    let h = tuned.step_sizes().unwrap();
    let scaled: Vec<f64> = tuned
        .betas()
        .iter()
        .zip(h)
        .map(|(b, h)| h * ((1.0 - b) / 4.0 + b / 0.01))
        .collect();
    let (lo, hi) = scaled
        .iter()
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    // Measured (seed 5): h lambda between 0.33 and 0.50; a factor 2 allows for the pilot's
    // acceptance noise (32 chains) and its lag where lambda changes fastest, and fails a
    // schedule that lags by more than a few temperatures or does not adapt (400-fold).
    assert!(hi < 2.0 * lo, "h lambda from {lo} to {hi}");

    // The runs with those steps accept at about the target (0.574; measured 0.56 forward,
    // 0.50 reverse, averaged over the temperatures), and still bracket log Z (same margins
    // as above: 3 standard errors).
    let exact = target.sample(256, &mut rng);
    let b = tuned
        .bounds(&mut rng, &target, &base, &[DIM], Some(&exact), true)
        .unwrap();
    let upper = b.upper.as_ref().unwrap();
    for est in [&b.lower, upper] {
        assert!(
            (est.acceptance_rate - 0.574).abs() < 0.15,
            "acceptance {}",
            est.acceptance_rate
        );
    }
    assert!(b.lower.log_z < log_z + 3.0 * b.lower.standard_error);
    assert!(upper.log_z > log_z - 3.0 * upper.standard_error);

    // A 400-fold change of scale in 64-D is a hard path: neither run is near log Z at
    // K = 1000. Tuning must still beat the one fixed step that suits the target (h lambda
    // at beta = 1 as tuned), which crawls at the wide end of the path. Measured (log Z =
    // -88.55): tuned -93.85 / -84.80, a gap of 9.1 nats; fixed -199.5 / -43.9, a gap of 156.
    // A factor 5 leaves room for noise.
    let fixed = Ais::new(AisConfig {
        transition: AisTransition::Mala(MalaConfig::new(h[h.len() - 1])),
        ..ais.config().clone()
    })
    .unwrap()
    .bounds(&mut rng, &target, &base, &[DIM], Some(&exact), true)
    .unwrap();
    let gap = |b: &ebm::eval::AisBounds| b.upper.as_ref().unwrap().log_z - b.lower.log_z;
    assert!(
        5.0 * gap(&b) < gap(&fixed),
        "tuned gap {}, fixed {}",
        gap(&b),
        gap(&fixed)
    );

    let bad = AisTuning {
        target_acceptance: Some(1.5),
        ..AisTuning::default()
    };
    assert!(ais.tuned(&mut rng, &target, &base, &[DIM], &bad).is_err());
}

#[test]
fn ais_refuses_bad_settings_and_shapes() {
    let zero = AisConfig {
        n_temperatures: 0,
        ..AisConfig::default()
    };
    assert!(Ais::new(zero).is_err());
    let mut rng = StdRng::seed_from_u64(0);
    let ais = Ais::new(AisConfig::default()).unwrap();
    let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false);
    assert!(ais.forward(&mut rng, &energy, &base(), &[3]).is_err());
}
