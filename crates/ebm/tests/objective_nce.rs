//! Noise-contrastive estimation: consistency on a correlated 3-D Gaussian (mean, covariance and
//! the log-normaliser), the loss against closed forms, stability at extreme logits, config
//! validation and checkpoint state.

use ebm::energy::{Energy, EnergyModel, GaussianEnergy};
use ebm::objective::{
    GaussianNoise, GaussianNoiseConfig, LOG_NORMALIZER, Nce, NceConfig, NoiseDistribution,
    Objective,
};
use ebm_nn::{Adam, AdamConfig, Optimizer};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Mean [1, -1, 0.5]; variances 1, 1.5, 2; correlations 0.5 (x0, x1) and -0.3 (x1, x2).
fn truth() -> (Vec<f64>, Vec<f64>) {
    let (s0, s1, s2) = (1.0f64, 1.5f64.sqrt(), 2.0f64.sqrt());
    let c01 = 0.5 * s0 * s1;
    let c12 = -0.3 * s1 * s2;
    let cov = vec![
        1.0, c01, 0.0, //
        c01, 1.5, c12, //
        0.0, c12, 2.0,
    ];
    (vec![1.0, -1.0, 0.5], cov)
}

fn det3(m: &[f64]) -> f64 {
    m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
        + m[2] * (m[3] * m[7] - m[4] * m[6])
}

fn true_gaussian() -> GaussianEnergy<f64> {
    let (mean, cov) = truth();
    GaussianEnergy::from_mean_covariance(
        &Tensor::from_f64s(&mean, [3]),
        &Tensor::from_f64s(&cov, [3, 3]),
    )
    .unwrap()
}

/// A minibatch of `size` rows of `data`, drawn with replacement.
fn minibatch(data: &Tensor<f64>, size: usize, rng: &mut StdRng) -> Tensor<f64> {
    use rand::RngExt;
    let n = data.dim(0);
    let rows: Vec<usize> = (0..size).map(|_| rng.random_range(0..n)).collect();
    data.index_select(0, &rows)
}

#[test]
fn nce_recovers_gaussian_mean_covariance_and_log_normalizer() {
    let mut rng = StdRng::seed_from_u64(7);
    let n_data = 8000;
    let data = true_gaussian().sample(n_data, &mut rng);

    // Noise: the data's Gaussian widened by 1.5, so that q differs from the data and the model
    // must learn every parameter (a noise equal to the data would start the classifier at
    // chance with the answer given).
    let config = NceConfig {
        noise: GaussianNoiseConfig {
            covariance_inflation: 1.5,
        },
        ..NceConfig::default()
    };
    let mut nce = Nce::fit_gaussian(config, &data).unwrap();
    let mut model = GaussianEnergy::<f64>::new(3).unwrap();
    let adam = AdamConfig {
        lr: 0.03,
        ..AdamConfig::default()
    };
    let mut opt_model = Adam::new(adam).unwrap();
    let mut opt_c = Adam::new(adam).unwrap();

    // Adam at lr 0.03, then 0.003 for the last third to settle the minibatch noise.
    let steps = 1500;
    for step in 0..steps {
        if step == 2 * steps / 3 {
            opt_model.set_lr(0.003);
            opt_c.set_lr(0.003);
        }
        let batch = minibatch(&data, 256, &mut rng);
        let out = nce.step(&model, &batch, &mut rng).unwrap();
        let grads = out.loss.backward().unwrap();
        let g_model = model.params().grads_from(grads.clone());
        let g_c = nce.params().grads_from(grads);
        opt_model.step(model.params_mut(), &g_model);
        opt_c.step(nce.params_mut(), &g_c);
    }

    let (mean, cov) = truth();
    let learned_mean = model.mean().to_f64s();
    let learned_cov = model.covariance().to_f64s();

    // Tolerances. With n = 8000 the data's own sample mean has standard error
    // sqrt(Sigma_ii / n) <= sqrt(2 / 8000) = 0.016, and a covariance entry
    // sqrt((Sigma_ii Sigma_jj + Sigma_ij^2) / n) <= sqrt(8 / 8000) = 0.032. NCE with nu = 1
    // and a noise close to the data is less efficient than maximum likelihood (about twice the
    // variance), and the minibatch/noise draws of the last steps add a little: 0.08 for the
    // mean and 0.15 for the covariance are about 3.5 of those standard errors after doubling
    // the variance, while a run that does not converge (mean 0, covariance I) misses by > 0.5.
    // Seeds 7..11 gave errors up to 0.055 (mean), 0.07 (covariance) and 0.02 (c).
    for (i, (a, b)) in learned_mean.iter().zip(&mean).enumerate() {
        assert!((a - b).abs() < 0.08, "mean[{i}]: learned {a}, true {b}");
    }
    for (k, (a, b)) in learned_cov.iter().zip(&cov).enumerate() {
        assert!(
            (a - b).abs() < 0.15,
            "cov[{}][{}]: learned {a}, true {b}",
            k / 3,
            k % 3
        );
    }

    // The log-normaliser. True: log Z = d/2 log 2 pi + 1/2 log det Sigma = 3.10 for this
    // Sigma. The learned c must normalise the learned energy (c = the model's own log Z, which
    // is what NCE estimates: its error there is that of a ratio of two nearly equal densities,
    // a few hundredths) and so the true one, to within the error that the covariance error
    // above induces (1/2 |d log det| <= 1/2 sum_ij |dSigma_ij| |P_ij|, about 0.1 here).
    let c = nce.log_normalizer();
    let true_c = 1.5 * LN_2PI + 0.5 * det3(&cov).ln();
    let model_c = model.log_normalizer();
    assert!(
        (c - model_c).abs() < 0.05,
        "c = {c}, model log Z = {model_c}"
    );
    assert!((c - true_c).abs() < 0.1, "c = {c}, true log Z = {true_c}");
}

#[test]
fn loss_is_two_log_two_when_the_model_is_the_noise() {
    let mut rng = StdRng::seed_from_u64(1);
    let q = true_gaussian();
    let data = q.sample(64, &mut rng);

    // p_model = q exactly (same Gaussian, c = its log Z): G = -log nu for every sample, so
    // L = log(1 + nu) + nu log(1 + 1/nu): 2 log 2 for nu = 1, log 4 + 3 log(4/3) for nu = 3.
    for (nu, expected) in [
        (1.0, 2.0 * 2f64.ln()),
        (3.0, 4f64.ln() + 3.0 * (4.0f64 / 3.0).ln()),
    ] {
        let config = NceConfig {
            noise_ratio: nu,
            initial_log_normalizer: q.log_normalizer(),
            ..NceConfig::default()
        };
        let mut nce = Nce::new(config, q.clone()).unwrap();
        let out = nce.step(&q, &data, &mut rng).unwrap();
        let loss = out.metrics.get("loss").unwrap();
        // Rounding of log q and E + log Z on values of size ~10: 1e-12.
        assert!(
            (loss - expected).abs() < 1e-12,
            "nu {nu}: {loss} vs {expected}"
        );
        assert!((out.loss.item() - expected).abs() < 1e-12);
    }
}

#[test]
fn loss_matches_a_direct_computation() {
    let mut rng = StdRng::seed_from_u64(2);
    let model = true_gaussian();
    let noise = GaussianNoise::new(
        &Tensor::from_f64s(&[0.0, 0.0, 0.0], [3]),
        &Tensor::from_f64s(&[2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0], [3, 3]),
    )
    .unwrap();
    let (c, nu) = (0.7, 2.0);
    let config = NceConfig {
        noise_ratio: nu,
        initial_log_normalizer: c,
        ..NceConfig::default()
    };
    let nce = Nce::new(config, noise).unwrap();
    let data = model.sample(20, &mut rng);
    let y = NoiseDistribution::<f64>::sample(nce.noise(), 40, &mut rng);
    let out = nce.loss_with_noise(&model, &data, &y).unwrap();

    // By hand: log q(x) = -|x|^2 / 4 - 3/2 log(2 pi 2); G = -E - c - log nu - log q.
    let logit = |x: &Tensor<f64>| -> Vec<f64> {
        let e = model.energy(x).to_f64s();
        x.to_f64s()
            .chunks(3)
            .zip(e)
            .map(|(row, e)| {
                let sq: f64 = row.iter().map(|v| v * v).sum();
                let log_q = -sq / 4.0 - 1.5 * (2.0 * LN_2PI.exp()).ln();
                -e - c - nu.ln() - log_q
            })
            .collect()
    };
    let softplus = |t: f64| t.exp().ln_1p();
    let (gd, gn) = (logit(&data), logit(&y));
    let expected = gd.iter().map(|g| softplus(-g)).sum::<f64>() / 20.0
        + nu * gn.iter().map(|g| softplus(*g)).sum::<f64>() / 40.0;
    assert!(
        (out.loss.item() - expected).abs() < 1e-12 * expected.abs().max(1.0),
        "{} vs {expected}",
        out.loss.item()
    );
    let accuracy = (gd.iter().filter(|&&g| g > 0.0).count()
        + gn.iter().filter(|&&g| g < 0.0).count()) as f64
        / 60.0;
    assert_eq!(out.metrics.get("accuracy"), Some(accuracy));
    assert_eq!(out.metrics.get("log_normalizer"), Some(c));
    let names: Vec<&str> = out.metrics.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "loss",
            "log_normalizer",
            "accuracy",
            "energy_data",
            "energy_noise"
        ]
    );
}

#[test]
fn extreme_logits_give_finite_loss_and_gradients() {
    let mut rng = StdRng::seed_from_u64(3);
    let noise = GaussianEnergy::<f64>::new(2).unwrap();
    let data = Tensor::<f64>::randn([16, 2], &mut rng);
    let nu = 2.0;
    let config = NceConfig {
        noise_ratio: nu,
        ..NceConfig::default()
    };
    let mut nce = Nce::new(config, noise).unwrap();

    // A constant energy of +-1000 makes |G| about 1000 for every sample; log q and log nu move
    // G by a few units, which the tolerance (1e-6 relative) does not see at this scale: the
    // softplus of the correctly classified side is below e^-990.
    for sign in [1.0, -1.0] {
        let energy = move |x: &Tensor<f64>| {
            x.sum_axes(&[1], false)
                .mul_scalar(0.0)
                .add_scalar(sign * 1e3)
        };
        let out = nce.step(&energy, &data, &mut rng).unwrap();
        let loss = out.loss.item();
        let grads = nce.params().backward(&out.loss).unwrap();
        let dc = grads.by_name(LOG_NORMALIZER).unwrap().item();
        assert!(
            loss.is_finite() && dc.is_finite(),
            "loss {loss}, dL/dc {dc}"
        );

        // E = +1000: every G ~ -1000, L ~ mean(-G_data) = 1000 + ..., dL/dc = 1 (data term).
        // E = -1000: every G ~ +1000, L ~ nu mean(G_noise), dL/dc = -nu (noise term).
        let (expected_loss, expected_dc) = if sign > 0.0 {
            (1e3, 1.0)
        } else {
            (nu * 1e3, -nu)
        };
        assert!(
            (loss - expected_loss).abs() < 1e-2 * expected_loss,
            "{loss} vs {expected_loss}"
        );
        assert!((dc - expected_dc).abs() < 1e-12, "{dc} vs {expected_dc}");
        let accuracy = out.metrics.get("accuracy").unwrap();
        assert!(accuracy == 16.0 / 48.0 || accuracy == 32.0 / 48.0);
    }
}

#[test]
fn invalid_configs_are_rejected_naming_the_value() {
    let noise = || GaussianEnergy::<f64>::new(2).unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let config = NceConfig {
            noise_ratio: bad,
            ..NceConfig::default()
        };
        let err = Nce::new(config, noise()).unwrap_err().to_string();
        assert!(
            err.contains("noise_ratio") && err.contains(&bad.to_string()),
            "{err}"
        );
    }
    let config = NceConfig {
        initial_log_normalizer: f64::NAN,
        ..NceConfig::default()
    };
    let err = Nce::new(config, noise()).unwrap_err().to_string();
    assert!(
        err.contains("initial_log_normalizer") && err.contains("NaN"),
        "{err}"
    );

    let mut rng = StdRng::seed_from_u64(4);
    let data = Tensor::<f64>::randn([100, 2], &mut rng);
    let inflation = GaussianNoiseConfig {
        covariance_inflation: -0.5,
    };
    let err = GaussianNoise::fit(&data, &inflation)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("covariance_inflation") && err.contains("-0.5"),
        "{err}"
    );
    let config = NceConfig {
        noise: inflation,
        ..NceConfig::default()
    };
    let err = Nce::fit_gaussian(config, &data).unwrap_err().to_string();
    assert!(err.contains("covariance_inflation"), "{err}");

    // Two samples in 3-D: a singular covariance, reported with the matrix.
    let few = Tensor::<f64>::randn([2, 3], &mut rng);
    let err = GaussianNoise::fit(&few, &GaussianNoiseConfig::default()).unwrap_err();
    assert!(err.to_string().contains("positive-definite"), "{err}");

    // Serde: unknown fields are refused; missing ones take the defaults.
    assert!(serde_json::from_str::<NceConfig>(r#"{"nu": 2}"#).is_err());
    let parsed: NceConfig = serde_json::from_str(r#"{"noise_ratio": 2}"#).unwrap();
    assert_eq!(parsed.noise_ratio, 2.0);
    assert_eq!(parsed.noise.covariance_inflation, 1.0);
}

#[test]
fn fitted_noise_matches_data_moments_and_round_trips_through_state_dict() {
    let mut rng = StdRng::seed_from_u64(5);
    let data = true_gaussian().sample(2000, &mut rng);
    let fitted = GaussianNoise::fit(
        &data,
        &GaussianNoiseConfig {
            covariance_inflation: 2.0,
        },
    )
    .unwrap();

    // The fitted covariance is exactly twice the sample covariance (divisor n - 1).
    let x = data.to_f64s();
    let n = 2000.0;
    let m: Vec<f64> = (0..3)
        .map(|j| x.chunks(3).map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let cov = fitted.gaussian().covariance().to_f64s();
    for i in 0..3 {
        for j in 0..3 {
            let s = x
                .chunks(3)
                .map(|r| (r[i] - m[i]) * (r[j] - m[j]))
                .sum::<f64>()
                / (n - 1.0);
            assert!((cov[i * 3 + j] - 2.0 * s).abs() < 1e-10);
        }
    }

    // A fresh NCE with other noise takes the fitted noise back from the saved state.
    let saved = Nce::new(NceConfig::default(), fitted).unwrap();
    let mut restored = Nce::new(
        NceConfig::default(),
        GaussianNoise::fit(&data.narrow(0, 0, 50), &GaussianNoiseConfig::default()).unwrap(),
    )
    .unwrap();
    let state = saved.state_dict();
    let via_trait = Objective::<f64, GaussianEnergy<f64>>::state_dict(&saved);
    assert_eq!(state, via_trait);
    assert!(state.tensors.keys().all(|k| k.starts_with("noise.")));
    restored.load_state_dict(&state).unwrap();
    let probe = data.narrow(0, 0, 10);
    assert_eq!(
        saved.noise().log_prob(&probe).to_f64s(),
        restored.noise().log_prob(&probe).to_f64s()
    );
    let bad = ebm_nn::StateDict::new();
    let err = Objective::<f64, GaussianEnergy<f64>>::load_state_dict(&mut restored, &bad);
    assert!(err.is_err());

    // The objective's parameter store holds c alone.
    let params = Objective::<f64, GaussianEnergy<f64>>::params(&saved).unwrap();
    assert_eq!(params.names(), [LOG_NORMALIZER]);
    assert_eq!(saved.params().names(), [LOG_NORMALIZER]);
}
