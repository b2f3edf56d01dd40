//! Maximum likelihood with MCMC negatives: consistency on a correlated 3-D Gaussian (PCD with
//! ULA, CD-k with MALA), the loss gradient against a direct computation, the energy penalty's
//! gradient, checkpoint state round trips and config validation.

use ebm::energy::{Energy, EnergyModel, GaussianEnergy};
use ebm::objective::{
    ChainInit, ChainStart, MaximumLikelihood, MaximumLikelihoodConfig, McmcKernel, Objective,
    contrastive_loss,
};
use ebm::sampler::{LangevinConfig, MalaConfig, ReplayBufferConfig, RestartDistribution};
use ebm_nn::{Adam, AdamConfig, Optimizer};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index;

const MEAN: [f64; 3] = [1.0, -1.0, 0.5];

/// Variances 1, 1.5, 2; correlations 0.5 (x0, x1), -0.3 (x0, x2), 0.2 (x1, x2).
fn true_covariance() -> [f64; 9] {
    let sd = [1.0f64, 1.5f64.sqrt(), 2.0f64.sqrt()];
    let rho = [[1.0, 0.5, -0.3], [0.5, 1.0, 0.2], [-0.3, 0.2, 1.0]];
    let mut c = [0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            c[3 * i + j] = rho[i][j] * sd[i] * sd[j];
        }
    }
    c
}

/// The inverse of a symmetric 3 x 3 matrix by cofactors.
fn inverse3(m: &[f64; 9]) -> [f64; 9] {
    let a = |i: usize, j: usize| m[3 * i + j];
    let cof = |i: usize, j: usize| {
        let (r0, r1) = ((i + 1) % 3, (i + 2) % 3);
        let (c0, c1) = ((j + 1) % 3, (j + 2) % 3);
        a(r0, c0) * a(r1, c1) - a(r0, c1) * a(r1, c0)
    };
    let det = a(0, 0) * cof(0, 0) + a(0, 1) * cof(0, 1) + a(0, 2) * cof(0, 2);
    let mut inv = [0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            inv[3 * j + i] = cof(i, j) / det;
        }
    }
    inv
}

/// The product of two 3 x 3 matrices.
fn matmul3(a: &[f64; 9], b: &[f64; 9]) -> [f64; 9] {
    std::array::from_fn(|k| (0..3).map(|l| a[3 * (k / 3) + l] * b[3 * l + k % 3]).sum())
}

/// `n` draws of the true Gaussian.
fn data(n: usize, rng: &mut StdRng) -> Tensor<f64> {
    let mean = Tensor::from_f64s(&MEAN, [3]);
    let cov = Tensor::from_f64s(&true_covariance(), [3, 3]);
    GaussianEnergy::from_mean_covariance(&mean, &cov)
        .unwrap()
        .sample(n, rng)
}

/// Trains `GaussianEnergy::new(3)` by `objective` with Adam (lr 0.05, then 0.01 for the last
/// third) on batches of 256 rows of `x`, and returns the mean and covariance averaged over the
/// last `n_average` steps (Polyak averaging, which removes most of the optimiser's jitter).
fn train(
    objective: &mut MaximumLikelihood<f64>,
    x: &Tensor<f64>,
    n_steps: usize,
    n_average: usize,
    rng: &mut StdRng,
) -> ([f64; 3], [f64; 9]) {
    let mut energy = GaussianEnergy::<f64>::new(3).unwrap();
    let mut adam = Adam::new(AdamConfig {
        lr: 0.05,
        ..AdamConfig::default()
    })
    .unwrap();
    let (mut mean, mut cov) = ([0.0; 3], [0.0; 9]);
    for step in 0..n_steps {
        if step == 2 * n_steps / 3 {
            adam.set_lr(0.01);
        }
        let rows = index::sample(rng, x.dim(0), 256).into_vec();
        let batch = x.index_select(0, &rows);
        let out = objective.step(&energy, &batch, rng).unwrap();
        let grads = energy.params().backward(&out.loss).unwrap();
        adam.step(energy.params_mut(), &grads);
        if step >= n_steps - n_average {
            let w = 1.0 / n_average as f64;
            for (m, v) in mean.iter_mut().zip(energy.mean().to_f64s()) {
                *m += w * v;
            }
            for (c, v) in cov.iter_mut().zip(energy.covariance().to_f64s()) {
                *c += w * v;
            }
        }
    }
    (mean, cov)
}

fn assert_close(what: &str, found: &[f64], expected: &[f64], tolerance: f64) {
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= tolerance,
            "{what}[{i}]: found {f:.4}, expected {e:.4} (tolerance {tolerance}); all: {found:.4?} vs {expected:.4?}"
        );
    }
}

#[test]
fn persistent_langevin_recovers_gaussian_up_to_the_ula_bias() {
    let mut rng = StdRng::seed_from_u64(1);
    let x = data(10_000, &mut rng);
    let h = 0.05;
    let config = MaximumLikelihoodConfig {
        chain_init: ChainInit::Persistent(ChainStart::Noise(RestartDistribution::Gaussian {
            mean: 0.0,
            std: 1.0,
        })),
        kernel: McmcKernel::Langevin(LangevinConfig::new(h)),
        n_steps: 20,
        energy_penalty: 0.0,
    };
    let mut objective = MaximumLikelihood::new(config).unwrap();
    let (mean, cov) = train(&mut objective, &x, 1500, 300, &mut rng);

    // ULA with step h on a Gaussian of precision P has the stationary covariance
    // (P - h P^2 / 2)^-1 = P^-1 (I - h P / 2)^-1: variances inflated by 1 / (1 - h lambda / 2).
    // At the fixed point the chains' covariance equals the data's Sigma, so the model's
    // precision solves P - (h / 2) P^2 = Sigma^-1 (exact for Gaussians), to first order
    // P^-1 = Sigma - (h / 2) I. We solve it by the fixed-point iteration
    // P <- Sigma^-1 + (h / 2) P^2 (a contraction: h |P| < 1 here) and compare with P^-1.
    let sigma_inv = inverse3(&true_covariance());
    let mut p = sigma_inv;
    for _ in 0..100 {
        let p2 = matmul3(&p, &p);
        p = std::array::from_fn(|k| sigma_inv[k] + h / 2.0 * p2[k]);
    }
    let biased = inverse3(&p);

    // Tolerances: the 10,000 data points fix the mean to a standard error of at most
    // sqrt(2 / 10000) = 0.014 and the covariance entries to sqrt((s_ii s_jj + s_ij^2) / n) <=
    // 0.028; the 256 persistent chains and Adam add noise of the same order after averaging.
    // 0.07 and 0.12 are about 4-5 of these errors combined, while a missing ULA correction or
    // a sign error in the gradient moves entries by 0.1 or (far) more.
    assert_close("mean", &mean, &MEAN, 0.07);
    assert_close("covariance", &cov, &biased, 0.12);
}

#[test]
fn cd_k_with_mala_recovers_gaussian() {
    let mut rng = StdRng::seed_from_u64(2);
    let x = data(10_000, &mut rng);
    let config = MaximumLikelihoodConfig {
        chain_init: ChainInit::Data,
        kernel: McmcKernel::Mala(MalaConfig::new(0.5)),
        n_steps: 10,
        energy_penalty: 0.0,
    };
    let mut objective = MaximumLikelihood::new(config).unwrap();
    let (mean, cov) = train(&mut objective, &x, 1500, 300, &mut rng);

    // MALA leaves the model exactly invariant, so CD-k's fixed point is the model that the
    // data distribution already is: no step-size bias. Tolerances as in the PCD test
    // (4-5 standard errors of the data's moments and of the optimisation noise combined).
    assert_close("mean", &mean, &MEAN, 0.07);
    assert_close("covariance", &cov, &true_covariance(), 0.12);
}

/// Per-row energies and parameter gradients of `energy` on the rows of `x`, one row at a time.
fn per_row(energy: &GaussianEnergy<f64>, x: &Tensor<f64>) -> Vec<(f64, Vec<f64>)> {
    (0..x.dim(0))
        .map(|i| {
            let e = energy.energy(&x.narrow(0, i, 1)).sum();
            let grads = energy.params().backward(&e).unwrap();
            let g = grads
                .iter()
                .flat_map(|(_, g)| g.unwrap().to_f64s())
                .collect();
            (e.item(), g)
        })
        .collect()
}

/// The gradient of `loss` with respect to every parameter, flattened.
fn flat_grad(energy: &GaussianEnergy<f64>, loss: &Tensor<f64>) -> Vec<f64> {
    let grads = energy.params().backward(loss).unwrap();
    grads
        .iter()
        .flat_map(|(_, g)| g.unwrap().to_f64s())
        .collect()
}

fn gaussian_fixture() -> (GaussianEnergy<f64>, Tensor<f64>, Tensor<f64>) {
    let mut rng = StdRng::seed_from_u64(3);
    let mean = Tensor::from_f64s(&[0.3, -0.2, 0.1], [3]);
    let cov = Tensor::from_f64s(&true_covariance(), [3, 3]);
    let energy = GaussianEnergy::from_mean_covariance(&mean, &cov).unwrap();
    let data = Tensor::randn([7, 3], &mut rng);
    let samples = Tensor::randn([5, 3], &mut rng).mul_scalar(1.5);
    (energy, data, samples)
}

#[test]
fn loss_gradient_is_data_minus_sample_mean_energy_gradient() {
    let (energy, data, samples) = gaussian_fixture();
    let (loss, _, _) = contrastive_loss(&energy, &data, &samples, 0.0);
    let found = flat_grad(&energy, &loss);

    // E_pd[grad E] - E_model[grad E], with each row's gradient taken on its own.
    let plus = per_row(&energy, &data);
    let minus = per_row(&energy, &samples);
    let mut expected = vec![0.0; found.len()];
    for (_, g) in &plus {
        expected.iter_mut().zip(g).for_each(|(e, g)| *e += g / 7.0);
    }
    for (_, g) in &minus {
        expected.iter_mut().zip(g).for_each(|(e, g)| *e -= g / 5.0);
    }

    // The same sums in another order: rounding only, about 1e-15 relative.
    assert!(expected.iter().any(|g| g.abs() > 0.1));
    assert_close("gradient", &found, &expected, 1e-12);
}

#[test]
fn energy_penalty_adds_two_alpha_mean_energy_times_gradient() {
    let (energy, data, samples) = gaussian_fixture();
    let alpha = 0.3;
    let (plain, _, _) = contrastive_loss(&energy, &data, &samples, 0.0);
    let (penalised, _, _) = contrastive_loss(&energy, &data, &samples, alpha);
    let difference: Vec<f64> = flat_grad(&energy, &penalised)
        .iter()
        .zip(flat_grad(&energy, &plain))
        .map(|(a, b)| a - b)
        .collect();

    // grad of alpha mean(E^2) = 2 alpha mean(E grad E), over data and samples separately.
    let mut expected = vec![0.0; difference.len()];
    for (rows, n) in [
        (per_row(&energy, &data), 7.0),
        (per_row(&energy, &samples), 5.0),
    ] {
        for (e, g) in rows {
            expected
                .iter_mut()
                .zip(g)
                .for_each(|(x, g)| *x += 2.0 * alpha * e * g / n);
        }
    }
    assert!(expected.iter().any(|g| g.abs() > 0.1));
    assert_close("penalty gradient", &difference, &expected, 1e-12);

    // And the value: alpha (mean E(x+)^2 + mean E(x-)^2).
    let e2 = |x: &Tensor<f64>| energy.energy(x).square().mean().item();
    let added = penalised.item() - plain.item();
    assert!((added - alpha * (e2(&data) + e2(&samples))).abs() < 1e-12);
}

#[test]
fn samples_are_detached_from_the_parameters() {
    // The objective's loss gradient equals contrastive_loss's on fixed samples: the chains
    // add no gradient. With CD from data and a kernel of zero noise and one tiny step, the
    // samples are a known function of the data; if they were not detached the gradient would
    // pick up a term through grad_x E.
    let (energy, data, _) = gaussian_fixture();
    let h = 1e-3;
    let config = MaximumLikelihoodConfig {
        chain_init: ChainInit::Data,
        kernel: McmcKernel::Langevin(LangevinConfig {
            step_size: h,
            noise_scale: 0.0,
            grad_clip: None,
            clamp: None,
        }),
        n_steps: 1,
        energy_penalty: 0.0,
    };
    let mut objective = MaximumLikelihood::new(config).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let step = objective.step(&energy, &data, &mut rng).unwrap();
    let samples = &data
        - &energy
            .energy_and_grad(&data, false)
            .unwrap()
            .1
            .mul_scalar(h);
    let (loss, _, _) = contrastive_loss(&energy, &data, &samples, 0.0);
    assert_close(
        "gradient",
        &flat_grad(&energy, &step.loss),
        &flat_grad(&energy, &loss),
        1e-12,
    );
    let m = &step.metrics;
    let gap = m.get("energy_data").unwrap() - m.get("energy_samples").unwrap();
    assert!((m.get("energy_gap").unwrap() - gap).abs() < 1e-15);
    assert!(
        m.get("acceptance_rate").is_none(),
        "ULA reports no acceptance"
    );
}

/// Bits of every tensor and the metadata of a state.
fn bits(state: &ebm_nn::StateDict<f64>) -> Vec<(String, Vec<u64>)> {
    let mut out: Vec<(String, Vec<u64>)> = state
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.to_f64s().iter().map(|v| v.to_bits()).collect()))
        .collect();
    out.extend(
        state
            .metadata
            .iter()
            .map(|(k, v)| (format!("{k}={v}"), Vec::new())),
    );
    out
}

fn round_trip(chain_init: ChainInit, kernel: McmcKernel) {
    let config = MaximumLikelihoodConfig {
        chain_init,
        kernel,
        n_steps: 3,
        energy_penalty: 0.1,
    };
    let (energy, _, _) = gaussian_fixture();
    let mut rng = StdRng::seed_from_u64(5);
    let x = data(64, &mut rng);
    let mut first = MaximumLikelihood::new(config.clone()).unwrap();
    for _ in 0..3 {
        first.step(&energy, &x, &mut rng).unwrap();
    }
    let state = Objective::<f64, GaussianEnergy<f64>>::state_dict(&first);
    assert!(!state.tensors.is_empty());

    let mut second = MaximumLikelihood::new(config).unwrap();
    Objective::<f64, GaussianEnergy<f64>>::load_state_dict(&mut second, &state).unwrap();
    let restored = Objective::<f64, GaussianEnergy<f64>>::state_dict(&second);
    assert_eq!(bits(&state), bits(&restored));

    // Both continue identically from generators in the same state.
    let (mut rng, mut rng2) = (StdRng::seed_from_u64(7), StdRng::seed_from_u64(7));
    let a = first.step(&energy, &x, &mut rng).unwrap();
    let b = second.step(&energy, &x, &mut rng2).unwrap();
    assert_eq!(a.loss.item().to_bits(), b.loss.item().to_bits());
    assert_eq!(
        bits(&Objective::<f64, GaussianEnergy<f64>>::state_dict(&first)),
        bits(&Objective::<f64, GaussianEnergy<f64>>::state_dict(&second))
    );
}

#[test]
fn replay_buffer_state_round_trips_bit_for_bit() {
    let restart = RestartDistribution::Uniform {
        low: -4.0,
        high: 4.0,
    };
    round_trip(
        ChainInit::ReplayBuffer(ReplayBufferConfig::new(200, restart)),
        McmcKernel::Langevin(LangevinConfig::new(0.01)),
    );
}

#[test]
fn persistent_chains_round_trip_bit_for_bit() {
    round_trip(
        ChainInit::Persistent(ChainStart::Data),
        McmcKernel::Mala(MalaConfig::new(0.2)),
    );
}

#[test]
fn loading_state_of_another_chain_init_is_refused() {
    let (energy, _, _) = gaussian_fixture();
    let mut rng = StdRng::seed_from_u64(6);
    let x = data(32, &mut rng);
    let persistent = MaximumLikelihoodConfig {
        chain_init: ChainInit::Persistent(ChainStart::Data),
        ..MaximumLikelihoodConfig::default()
    };
    let mut pcd = MaximumLikelihood::new(persistent).unwrap();
    pcd.step(&energy, &x, &mut rng).unwrap();
    let state = Objective::<f64, GaussianEnergy<f64>>::state_dict(&pcd);
    let mut buffer = MaximumLikelihood::<f64>::new(MaximumLikelihoodConfig::default()).unwrap();
    let err = Objective::<f64, GaussianEnergy<f64>>::load_state_dict(&mut buffer, &state)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("persistent") && err.contains("replay_buffer"),
        "{err}"
    );

    // A persistent batch of another size is a shape error, not a silent restart.
    let err = pcd
        .step(&energy, &data(16, &mut rng), &mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[32, 3]") && err.contains("[16, 3]"), "{err}");
}

#[test]
fn invalid_configs_are_rejected_naming_the_value() {
    let base = MaximumLikelihoodConfig::default();
    let cases = [
        (
            MaximumLikelihoodConfig {
                n_steps: 0,
                ..base.clone()
            },
            "n_steps",
            "0",
        ),
        (
            MaximumLikelihoodConfig {
                energy_penalty: -0.5,
                ..base.clone()
            },
            "energy_penalty",
            "-0.5",
        ),
        (
            MaximumLikelihoodConfig {
                energy_penalty: f64::NAN,
                ..base.clone()
            },
            "energy_penalty",
            "NaN",
        ),
        (
            MaximumLikelihoodConfig {
                kernel: McmcKernel::Langevin(LangevinConfig::new(-0.25)),
                ..base.clone()
            },
            "step_size",
            "-0.25",
        ),
        (
            MaximumLikelihoodConfig {
                kernel: McmcKernel::Mala(MalaConfig::new(0.0)),
                ..base.clone()
            },
            "step_size",
            "0",
        ),
        (
            MaximumLikelihoodConfig {
                chain_init: ChainInit::ReplayBuffer(ReplayBufferConfig::new(
                    0,
                    RestartDistribution::Gaussian {
                        mean: 0.0,
                        std: 1.0,
                    },
                )),
                ..base.clone()
            },
            "capacity",
            "0",
        ),
        (
            MaximumLikelihoodConfig {
                chain_init: ChainInit::Noise(RestartDistribution::Uniform {
                    low: 2.0,
                    high: -2.0,
                }),
                ..base.clone()
            },
            "Uniform",
            "low: 2",
        ),
        (
            MaximumLikelihoodConfig {
                chain_init: ChainInit::Persistent(ChainStart::Noise(
                    RestartDistribution::Gaussian {
                        mean: 0.0,
                        std: -1.0,
                    },
                )),
                ..base.clone()
            },
            "std",
            "-1",
        ),
    ];
    for (config, what, value) in cases {
        let err = MaximumLikelihood::<f64>::new(config.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(what) && err.contains(value),
            "{config:?}: {err}"
        );
    }
}

#[test]
fn config_reads_from_json_with_defaults_and_rejects_unknown_fields() {
    let config: MaximumLikelihoodConfig = serde_json::from_str(
        r#"{"chain_init": {"noise": {"kind": "uniform", "low": -1.0, "high": 1.0}},
            "kernel": {"mala": {"step_size": 0.1}}, "n_steps": 5}"#,
    )
    .unwrap();
    assert_eq!(config.n_steps, 5);
    assert_eq!(config.energy_penalty, 0.1);
    assert_eq!(config.kernel, McmcKernel::Mala(MalaConfig::new(0.1)));

    let default = MaximumLikelihoodConfig::default();
    let text = serde_json::to_string(&default).unwrap();
    assert_eq!(
        serde_json::from_str::<MaximumLikelihoodConfig>(&text).unwrap(),
        default
    );
    assert!(serde_json::from_str::<MaximumLikelihoodConfig>(r#"{"n_step": 5}"#).is_err());
}
