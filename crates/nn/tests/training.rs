//! Optimisers at work: convergence on a quadratic, a small fit, and bit-exact resumption from
//! a checkpoint file.

use ebm_nn::{
    Activation, Adam, AdamConfig, Decay, Ema, LrSchedule, LrScheduleConfig, Mlp, MlpConfig, Module,
    Optimizer, ParamStore, Sgd, SgdConfig, SpectralNormConfig, StateDict, clip_grad_norm,
    load_safetensors, save_safetensors,
};
use ebm_tensor::Tensor;
use ebm_tensor::autodiff::{GradOptions, grad};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// f(x) = 1/2 sum_i a_i (x_i - c_i)^2 with curvatures 1, 10, 100 (condition number 100).
fn quadratic(store: &ParamStore<f64>) -> Tensor<f64> {
    let a = Tensor::from_f64s(&[1.0, 10.0, 100.0], [3]);
    let c = Tensor::from_f64s(&[1.0, -2.0, 0.5], [3]);
    ((store.expect("x") - c).square() * a).sum().mul_scalar(0.5)
}

fn distance_to_minimum(store: &ParamStore<f64>) -> f64 {
    let x = store.expect("x").to_f64s();
    let c = [1.0, -2.0, 0.5];
    x.iter()
        .zip(c)
        .map(|(x, c)| (x - c).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn minimise(opt: &mut dyn Optimizer<f64>, schedule: Option<&LrSchedule>, steps: u64) -> f64 {
    let mut store = ParamStore::new();
    store
        .insert("x", Tensor::from_f64s(&[5.0, 5.0, 5.0], [3]))
        .unwrap();
    for _ in 0..steps {
        if let Some(s) = schedule {
            opt.set_lr(s.lr(opt.steps()));
        }
        let grads = store.backward(&quadratic(&store)).unwrap();
        opt.step(&mut store, &grads);
    }
    distance_to_minimum(&store)
}

#[test]
fn nesterov_sgd_converges_linearly_on_a_quadratic() {
    // lr 1/100 with momentum 0.9 contracts the error geometrically on every axis (the slow
    // one, curvature 1, by about 0.95 a step); 1,000 steps take it from 8 to rounding level
    // (~4e-16 here), so 1e-10 is a safe bound.
    let config = SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        nesterov: true,
        ..SgdConfig::default()
    };
    let mut sgd = Sgd::new(config).unwrap();
    let error = minimise(&mut sgd, None, 1_000);
    assert!(error < 1e-10, "distance {error}");
}

#[test]
fn adam_with_cosine_decay_minimises_a_quadratic() {
    // Adam's steps have size about lr whatever the gradient, so it settles only as the rate
    // decays to 0 (cosine, 0.1 to 0 over 3,000 steps). It ends ~1e-15 from the minimum here;
    // 1e-8 leaves a wide margin for other platforms' rounding.
    let decay = Decay::Cosine {
        decay_steps: 3_000,
        final_factor: 0.0,
    };
    let schedule = LrSchedule::new(LrScheduleConfig {
        base_lr: 0.1,
        warmup_steps: 0,
        decay,
    });
    let mut adam = Adam::new(AdamConfig {
        lr: 0.1,
        ..AdamConfig::default()
    })
    .unwrap();
    let error = minimise(&mut adam, Some(&schedule.unwrap()), 3_000);
    assert!(error < 1e-8, "distance {error}");
}

#[test]
fn adam_fits_a_curve_with_an_mlp() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut store = ParamStore::<f32>::new();
    let mlp = Mlp::new(&mut store, "f", &[1, 32, 32, 1], Activation::Tanh, &mut rng).unwrap();
    let xs: Vec<f64> = (0..64).map(|i| -3.0 + 6.0 * i as f64 / 63.0).collect();
    let x = Tensor::<f32>::from_f64s(&xs, [64, 1]);
    let y = Tensor::<f32>::from_f64s(&xs.iter().map(|v| v.sin()).collect::<Vec<_>>(), [64, 1]);
    let mut adam = Adam::new(AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    })
    .unwrap();
    let mut loss = f64::INFINITY;
    for _ in 0..1_000 {
        let l = (mlp.forward(&store, &x) - &y).square().mean();
        loss = l.item();
        let grads = store.backward(&l).unwrap();
        adam.step(&mut store, &grads);
    }
    // sin on [-3, 3] has variance ~0.5; this network fits it to a mean squared error of
    // ~3e-6 in 1,000 steps, and 1e-3 means "learned the curve" with a wide margin.
    assert!(loss < 1e-3, "mse {loss}");
}

/// Everything a training run carries between steps.
struct Run {
    store: ParamStore<f32>,
    mlp: Mlp,
    adam: Adam<f32>,
    ema: Ema<f32>,
    schedule: LrSchedule,
}

fn new_run(seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let config = MlpConfig {
        spectral_norm: Some(SpectralNormConfig::default()),
        ..MlpConfig::new(&[2, 16, 16, 1], Activation::Silu)
    };
    let mlp = Mlp::from_config(&mut store, "energy", &config, &mut rng).unwrap();
    let adam = Adam::new(AdamConfig {
        lr: 1e-2,
        ..AdamConfig::adamw()
    })
    .unwrap();
    let ema = Ema::new(&store, 0.9).unwrap();
    let decay = Decay::Cosine {
        decay_steps: 10,
        final_factor: 0.1,
    };
    let config = LrScheduleConfig {
        base_lr: 1e-2,
        warmup_steps: 2,
        decay,
    };
    let schedule = LrSchedule::new(config).unwrap();
    Run {
        store,
        mlp,
        adam,
        ema,
        schedule,
    }
}

/// One denoising-score-matching step with data and noise drawn from `seed + step`.
fn train_step(run: &mut Run) {
    let step = run.adam.steps();
    let mut rng = StdRng::seed_from_u64(1_000 + step);
    let (sigma, n) = (0.3, 32);
    let x = Tensor::<f32>::randn([n, 2], &mut rng);
    let z = Tensor::<f32>::randn([n, 2], &mut rng);
    let noisy = (&x + &z.mul_scalar(sigma)).set_requires_grad(true);
    let energy = run.mlp.forward_train(&mut run.store, &noisy).sum();
    let dx = grad(&[energy], &[noisy], None, GradOptions::create_graph()).unwrap();
    let loss = (&z.mul_scalar(1.0 / sigma) - &dx[0])
        .square()
        .sum_axes(&[1], false)
        .mean();
    let mut grads = run.store.backward(&loss).unwrap();
    clip_grad_norm(&mut grads, 1.0).unwrap();
    run.adam.set_lr(run.schedule.lr(step));
    run.adam.step(&mut run.store, &grads);
    run.ema.update(&run.store);
}

#[test]
fn training_resumes_bit_for_bit_from_a_checkpoint_file() {
    // Uninterrupted: 8 steps.
    let mut straight = new_run(1);
    for _ in 0..8 {
        train_step(&mut straight);
    }

    // Interrupted after 4: weights, u buffers, Adam and EMA state through one file, into a run
    // built from another seed.
    let mut first = new_run(1);
    for _ in 0..4 {
        train_step(&mut first);
    }
    let path =
        std::env::temp_dir().join(format!("ebm-nn-resume-{}.safetensors", std::process::id()));
    let mut extras = StateDict::new();
    extras
        .merge_prefixed("optim", first.adam.state_dict())
        .unwrap();
    extras
        .merge_prefixed("ema", first.ema.state_dict())
        .unwrap();
    save_safetensors(&path, &first.store, &extras).unwrap();

    let mut resumed = new_run(2);
    let loaded = load_safetensors(&path, &mut resumed.store).unwrap();
    std::fs::remove_file(&path).unwrap();
    resumed
        .adam
        .load_state_dict(&resumed.store, &loaded.prefixed("optim"))
        .unwrap();
    resumed
        .ema
        .load_state_dict(&resumed.store, &loaded.prefixed("ema"))
        .unwrap();
    for _ in 0..4 {
        train_step(&mut resumed);
    }

    for (name, _, t) in straight.store.iter_all() {
        let bits = |t: &Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(t), bits(resumed.store.expect(name)), "{name}");
    }
    assert_eq!(straight.adam.state_dict(), resumed.adam.state_dict());
    assert_eq!(straight.ema.state_dict(), resumed.ema.state_dict());
    assert_eq!(resumed.adam.steps(), 8);
}
