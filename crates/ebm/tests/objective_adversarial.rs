//! Adversarial training against a flow sampler: consistency on a correlated 3-D Gaussian
//! (mean and covariance, and the flow matching the model), the Trainer's use of the two
//! losses, and a short run on 8gaussians.

use ebm::data::toy2d::eight_gaussians;
use ebm::energy::{EnergyModel, GaussianEnergy, MlpEnergy, MlpEnergyConfig};
use ebm::objective::{Adversarial, AdversarialConfig, Metrics, Objective};
use ebm::train::{Trainer, TrainerConfig};
use ebm_nn::{Adam, AdamConfig, Optimizer, RealNvpConfig, Sgd, SgdConfig};
use ebm_tensor::Tensor;
use ebm_tensor::autodiff::GradOptions;
use rand::SeedableRng;
use rand::rngs::StdRng;

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

fn config_3d() -> AdversarialConfig {
    AdversarialConfig {
        energy_penalty: 0.0,
        flow: RealNvpConfig {
            dim: 3,
            n_couplings: 4,
            hidden: vec![16, 16],
            ..RealNvpConfig::default()
        },
    }
}

#[test]
fn adversarial_recovers_gaussian_mean_and_covariance() {
    let mut rng = StdRng::seed_from_u64(7);
    let n_data = 8000;
    let data = true_gaussian().sample(n_data, &mut rng);
    let mut adv = Adversarial::<f64>::new(config_3d(), &mut rng).unwrap();
    let mut model = GaussianEnergy::<f64>::new(3).unwrap();
    let adam = |lr| {
        Adam::new(AdamConfig {
            lr,
            ..AdamConfig::default()
        })
        .unwrap()
    };
    let (mut opt_model, mut opt_flow) = (adam(0.003), adam(0.01));

    // As the Trainer does: the model's gradient from `loss`, the flow's from `aux_loss`.
    let steps = 1500;
    for step in 0..steps {
        if step == 2 * steps / 3 {
            opt_model.set_lr(0.0003);
            opt_flow.set_lr(0.001);
        }
        let batch = minibatch(&data, 256, &mut rng);
        let out = adv.step(&model, &batch, &mut rng).unwrap();
        let keep = GradOptions {
            retain_graph: Some(true),
            ..GradOptions::default()
        };
        let g_model = model
            .params()
            .grad(std::slice::from_ref(&out.loss), keep)
            .unwrap();
        let g_flow = adv.params().backward(&out.aux_loss.unwrap()).unwrap();
        opt_model.step(model.params_mut(), &g_model);
        opt_flow.step(adv.params_mut(), &g_flow);
    }

    let (mean, cov) = truth();
    let learned_mean = model.mean().to_f64s();
    let learned_cov = model.covariance().to_f64s();

    // Tolerances as for NCE (tests/objective_nce.rs): the data's sample mean has standard
    // error <= 0.016 and a covariance entry <= 0.032 with n = 8000; the flow's lag behind the
    // model and the minibatches add to it. 0.08 and 0.15 are several such errors, while the
    // start (mean 0, covariance I) misses by > 0.5. Seed 7 gave 0.013 (mean) and 0.048
    // (covariance); with the flow and the energy at the same learning rate (flow lagging)
    // the covariance missed by 0.24.
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

    // The flow has followed the model: its draws have the model's moments.
    let m = 20_000;
    let y = adv.sample(m, &mut rng).to_f64s();
    let mu: Vec<f64> = (0..3)
        .map(|j| y.chunks(3).map(|r| r[j]).sum::<f64>() / m as f64)
        .collect();
    let mut sigma = [0.0; 9];
    for r in y.chunks(3) {
        for i in 0..3 {
            for j in 0..3 {
                sigma[i * 3 + j] += (r[i] - mu[i]) * (r[j] - mu[j]) / (m - 1) as f64;
            }
        }
    }

    // 20,000 draws: standard errors 0.01 (mean) and 0.02 (covariance); the flow's own fitting
    // error dominates (seed 7: 0.017 and 0.035), well inside 0.1 and 0.2.
    for i in 0..3 {
        assert!(
            (mu[i] - learned_mean[i]).abs() < 0.1,
            "flow mean[{i}] {}",
            mu[i]
        );
    }
    for k in 0..9 {
        assert!(
            (sigma[k] - learned_cov[k]).abs() < 0.2,
            "flow cov {k}: {}",
            sigma[k]
        );
    }
}

#[test]
fn the_trainer_takes_the_energy_gradient_from_loss_and_the_flow_from_aux_loss() {
    let mut rng = StdRng::seed_from_u64(2);
    let config = AdversarialConfig {
        flow: RealNvpConfig {
            n_couplings: 2,
            hidden: vec![4],
            ..RealNvpConfig::default()
        },
        ..AdversarialConfig::default()
    };
    let mut adv = Adversarial::<f64>::new(config, &mut rng).unwrap();
    let names: Vec<String> = adv.params().names().iter().map(|n| n.to_string()).collect();
    for name in &names {
        let t = adv.params().expect(name);
        let value = Tensor::<f64>::randn(t.shape().clone(), &mut rng).mul_scalar(0.5);
        adv.params_mut().set(name, value).unwrap();
    }
    let data = Tensor::<f64>::randn([8, 2], &mut rng).add_scalar(0.5);
    let model = GaussianEnergy::from_mean_covariance(
        &Tensor::from_f64s(&[0.3, -0.2], [2]),
        &Tensor::from_f64s(&[1.5, 0.4, 0.4, 0.8], [2, 2]),
    )
    .unwrap();
    let lr = 0.1;
    let sgd = || {
        Box::new(
            Sgd::new(SgdConfig {
                lr,
                ..SgdConfig::default()
            })
            .unwrap(),
        )
    };

    // The expected gradients, from a copy, with the same RNG.
    let mut copy = adv.clone();
    let boxed: Box<dyn EnergyModel<f64>> = Box::new(model.clone());
    let out = copy
        .step(boxed.as_ref(), &data, &mut StdRng::seed_from_u64(5))
        .unwrap();
    let keep = GradOptions {
        retain_graph: Some(true),
        ..GradOptions::default()
    };
    let aux = out.aux_loss.unwrap();
    let g_loss = boxed
        .params()
        .grad(std::slice::from_ref(&out.loss), keep)
        .unwrap();
    let g_aux_model = boxed
        .params()
        .grad(std::slice::from_ref(&aux), keep)
        .unwrap();
    let g_aux = copy.params().backward(&aux).unwrap();
    assert!(
        g_aux_model.norm() > 1e-3,
        "aux_loss does reach the energy: the test means something"
    );
    assert!(g_aux.norm() > 1e-3);

    let model: Box<dyn EnergyModel<f64>> = Box::new(model);
    let mut trainer =
        Trainer::new(model, adv.clone(), sgd(), TrainerConfig::default()).with_aux_optimizer(sgd());
    trainer.step(&data, &mut StdRng::seed_from_u64(5)).unwrap();

    // Plain SGD: new = old - lr g, to rounding.
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12 * (1.0 + b.abs());
    for (name, before) in boxed.params().iter() {
        let after = trainer.model().params().expect(name).to_f64s();
        let g = g_loss
            .by_name(name)
            .map_or(vec![0.0; after.len()], |g| g.to_f64s());
        for ((a, b), g) in after.iter().zip(before.to_f64s()).zip(g) {
            assert!(close(*a, b - lr * g), "{name}: {a} vs {}", b - lr * g);
        }
    }
    let trained = Objective::<f64, dyn EnergyModel<f64>>::params(trainer.objective()).unwrap();
    for (name, before) in adv.params().iter() {
        let after = trained.expect(name).to_f64s();
        let g = g_aux
            .by_name(name)
            .map_or(vec![0.0; after.len()], |g| g.to_f64s());
        for ((a, b), g) in after.iter().zip(before.to_f64s()).zip(g) {
            assert!(close(*a, b - lr * g), "{name}: {a} vs {}", b - lr * g);
        }
    }
}

/// Adversarial training of a 2-128-128-1 SiLU energy on 8gaussians through the Trainer, in
/// f64, Adam 1e-3 for the energy and for the flow; returns the last metrics.
fn train_8gaussians(steps: u64, seed: u64) -> Metrics {
    let mut rng = StdRng::seed_from_u64(seed);
    let mlp = MlpEnergy::<f64>::new(MlpEnergyConfig::new(&[2, 128, 128, 1]), &mut rng).unwrap();
    let model: Box<dyn EnergyModel<f64>> = Box::new(mlp);
    let adv = Adversarial::<f64>::new(AdversarialConfig::default(), &mut rng).unwrap();
    let adam = |lr| {
        Box::new(
            Adam::new(AdamConfig {
                lr,
                ..AdamConfig::default()
            })
            .unwrap(),
        )
    };
    let config = TrainerConfig {
        observe_every: (steps / 10).max(1),
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::new(model, adv, adam(1e-3), config).with_aux_optimizer(adam(1e-3));
    let mut last = Metrics::new();
    let mut log = |step: u64, m: &Metrics| {
        let get = |k: &str| m.get(k).unwrap();
        eprintln!(
            "step {step}: loss {:.4} gap {:.3} flow loss {:.3} entropy {:.3} flow log-likelihood {:.3}",
            get("loss"),
            get("energy_gap"),
            get("flow_loss"),
            get("flow_entropy"),
            get("flow_log_likelihood")
        );
        last = m.clone();
    };
    trainer
        .fit(steps, &mut rng, |rng| eight_gaussians(256, rng), &mut log)
        .unwrap();
    last
}

#[test]
fn adversarial_trains_an_mlp_energy_on_8gaussians() {
    // 300 steps run with finite losses. Not more: with these settings the flow spreads out
    // (entropy 3 -> 13, mean log q of the data -5.9 -> -9.5 at step 300) chasing an MLP energy
    // that is not yet confining, so the game does not settle here; see the report.
    let m = train_8gaussians(300, 0);
    assert!(m.get("loss").unwrap().is_finite());
    assert!(m.get("flow_loss").unwrap().is_finite());
}

/// The longer run quoted in the report: `cargo test --release -p ebm --test
/// objective_adversarial -- --ignored --nocapture`.
#[test]
#[ignore]
fn adversarial_on_8gaussians_longer_run() {
    train_8gaussians(5000, 0);
}
