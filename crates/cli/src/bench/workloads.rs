//! The benchmark workloads of BENCH.md, all in f32; all but `dsm-conv` on an MLP energy
//! 2-128-128-1 with SiLU:
//! * training: batches of 256 from `8gaussians` drawn fresh each step, a score-matching loss,
//!   and an Adam update (lr 1e-3). Each step draws its data and noise for the whole batch, then
//!   computes the loss and gradients in two data-parallel shards.
//! * training by sampling and by noise contrast: `pcd-mlp` and `nce-mlp`, through the
//!   library's `Trainer` and objectives, as a user would write them;
//! * sampling: 10,000 Langevin chains, 100 steps, fixed weights;
//! * `dsm-conv`, on images with a convolutional energy, in `conv.rs`.

use super::{Built, Workload, conv};
use ebm::data::toy2d::eight_gaussians;
use ebm::energy::{EnergyModel, MlpEnergy, MlpEnergyConfig};
use ebm::objective::score_matching::{
    denoising_score_matching_with_noise, exact_score_matching, sliced_score_matching,
};
use ebm::objective::{MaximumLikelihood, MaximumLikelihoodConfig, Nce, NceConfig};
use ebm::sampler::{Langevin, LangevinConfig, Sampler, run};
use ebm::train::{Trainer, TrainerConfig};
use ebm_nn::{Activation, Adam, AdamConfig, Mlp, Module, Optimizer, ParamStore, sharded_backward};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::ops::Range;

const BATCH: usize = 256;
const SIGMA: f64 = 0.1;
const WIDTHS: [usize; 4] = [2, 128, 128, 1];
/// Samples per shard of the data-parallel step (see `ebm_nn::sharded_backward`): two shards of
/// 128 keep both threads busy with one fork and one join per step. Measured against the whole
/// batch in one piece (kernels then split each operation across the threads): dsm-mlp 0.67 vs
/// 0.78 ms, ssm-mlp 0.96 vs 1.11 ms, esm-mlp 1.26 vs 1.61 ms; shards of 64 were no better.
const SHARD: usize = 128;

/// Every workload, in the order of BENCH.md.
pub(crate) fn all() -> Vec<Workload> {
    vec![
        Workload {
            name: "dsm-mlp",
            about: "MLP 2-128-128-1 energy, batch 256 of 8gaussians, denoising score matching, Adam",
            steps: 2000,
            warmup: 100,
            build: |seed| gaussians(training(seed, Loss::Denoising)),
            units: 1,
        },
        Workload {
            name: "ssm-mlp",
            about: "same energy and data, sliced score matching (one projection), Adam",
            steps: 2000,
            warmup: 100,
            build: |seed| gaussians(training(seed, Loss::Sliced)),
            units: 1,
        },
        Workload {
            name: "esm-mlp",
            about: "same energy and data, exact score matching (Hessian trace), Adam",
            steps: 1000,
            warmup: 50,
            build: |seed| gaussians(training(seed, Loss::Exact)),
            units: 1,
        },
        Workload {
            name: "pcd-mlp",
            about: "same energy and data, replay buffer + 20 Langevin steps, contrastive loss, Adam",
            steps: 500,
            warmup: 20,
            build: |seed| gaussians(trained(seed, Method::Pcd)),
            units: 1,
        },
        Workload {
            name: "nce-mlp",
            about: "same energy and data, NCE against a fitted Gaussian, learned log Z, Adam",
            steps: 2000,
            warmup: 100,
            build: |seed| gaussians(trained(seed, Method::Nce)),
            units: 1,
        },
        Workload {
            name: "langevin-sample",
            about: "same energy, fixed weights: 10,000 chains x 100 Langevin steps",
            steps: 10,
            warmup: 1,
            build: |seed| gaussians(langevin_sample(seed)),
            units: CHAINS * LANGEVIN_STEPS,
        },
        Workload {
            name: "dsm-conv",
            about: "3-conv energy on 1x28x28 Fashion-MNIST, batch 64, denoising score matching, Adam",
            steps: 40,
            warmup: 3,
            build: conv::dsm_conv,
            units: 1,
        },
    ]
}

/// A step on `8gaussians` data.
fn gaussians(step: Box<dyn FnMut() -> f64>) -> Built {
    Built {
        step,
        data: "8gaussians",
    }
}

#[derive(Clone, Copy)]
enum Method {
    Pcd,
    Nce,
}

/// A step of `ebm::train::Trainer` with a method of `ebm::objective`: a fresh batch, the
/// method's loss (for PCD: 256 chains from a replay buffer of 10,000 restarted from U[-4, 4]^2
/// with probability 0.05, 20 Langevin steps of 0.01 with noise sqrt(0.02), written back, energy
/// penalty 0.1; for NCE: 256 noise points from a Gaussian fitted once to 100,000 points, a
/// learned log-normaliser), gradients and Adam updates of the energy (and of log Z).
fn trained(seed: u64, method: Method) -> Box<dyn FnMut() -> f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mlp = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&WIDTHS), &mut rng).expect("a valid MLP");
    let model: Box<dyn EnergyModel<f32>> = Box::new(mlp);
    let adam = || -> Box<dyn Optimizer<f32>> {
        Box::new(
            Adam::new(AdamConfig {
                lr: 1e-3,
                ..AdamConfig::default()
            })
            .expect("valid Adam"),
        )
    };
    let config = TrainerConfig::default();
    let mut step: Box<dyn FnMut(&mut StdRng) -> f64> = match method {
        Method::Pcd => {
            let pcd = MaximumLikelihood::new(MaximumLikelihoodConfig::default())
                .expect("the default PCD settings are valid");
            let mut trainer = Trainer::new(model, pcd, adam(), config);
            Box::new(move |rng| {
                let x = eight_gaussians::<f32, _>(BATCH, rng);
                let metrics = trainer.step(&x, rng).expect("PCD of an MLP energy");
                metrics.get("loss").expect("a loss")
            })
        }
        Method::Nce => {
            let fit = eight_gaussians::<f32, _>(100_000, &mut rng);
            let nce = Nce::fit_gaussian(NceConfig::default(), &fit).expect("a Gaussian fits");
            let mut trainer = Trainer::new(model, nce, adam(), config).with_aux_optimizer(adam());
            Box::new(move |rng| {
                let x = eight_gaussians::<f32, _>(BATCH, rng);
                let metrics = trainer.step(&x, rng).expect("NCE of an MLP energy");
                metrics.get("loss").expect("a loss")
            })
        }
    };
    Box::new(move || step(&mut rng))
}

const CHAINS: usize = 10_000;
const LANGEVIN_STEPS: usize = 100;

/// Unadjusted Langevin sampling of the MLP energy with fixed weights: chains start uniform in
/// [-4, 4]^2 and take 100 steps of size 0.01 with noise scale sqrt(0.02). Returns the mean
/// energy of the final chains.
fn langevin_sample(seed: u64) -> Box<dyn FnMut() -> f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = ParamStore::<f32>::new();
    let mlp =
        Mlp::new(&mut store, "energy", &WIDTHS, Activation::Silu, &mut rng).expect("a valid MLP");
    let sampler = Langevin::new(LangevinConfig::new(0.01)).expect("a valid step size");

    Box::new(move || {
        let energy = |x: &Tensor<f32>| mlp.forward(&store, x).reshape([x.dim(0)]);
        let x0 = Tensor::<f32>::rand_uniform([CHAINS, 2], -4.0, 4.0, &mut rng);
        let state = sampler
            .init(x0, &energy)
            .expect("the MLP energy is differentiable");
        let (state, _) = run(&sampler, &mut rng, state, &energy, LANGEVIN_STEPS)
            .expect("the MLP energy is differentiable");
        state.energy.mean().item()
    })
}

#[derive(Clone, Copy)]
enum Loss {
    Denoising,
    Sliced,
    Exact,
}

/// A training step of the MLP energy with the given loss: fresh data, loss, gradients, Adam.
fn training(seed: u64, loss: Loss) -> Box<dyn FnMut() -> f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = ParamStore::<f32>::new();
    let mlp =
        Mlp::new(&mut store, "energy", &WIDTHS, Activation::Silu, &mut rng).expect("a valid MLP");
    let mut adam = Adam::new(AdamConfig {
        lr: 1e-3,
        ..AdamConfig::default()
    })
    .expect("valid Adam");

    Box::new(move || {
        // The step's randomness for the whole batch, drawn before the batch is split.
        let x = eight_gaussians::<f32, _>(BATCH, &mut rng);
        let noise = Tensor::<f32>::randn([BATCH, 2], &mut rng);

        let energy = |x: &Tensor<f32>| mlp.forward(&store, x).reshape([x.dim(0)]);
        let shard_loss = |r: Range<usize>| {
            let (x, noise) = (
                x.narrow(0, r.start, r.len()),
                noise.narrow(0, r.start, r.len()),
            );
            match loss {
                Loss::Denoising => denoising_score_matching_with_noise(&energy, &x, &noise, SIGMA),
                Loss::Sliced => sliced_score_matching(&energy, &x, &noise, false),
                Loss::Exact => exact_score_matching(&energy, &x),
            }
        };
        let (value, grads) = sharded_backward(&store, BATCH, SHARD, shard_loss)
            .expect("the score-matching losses of an MLP energy are differentiable");
        adam.step(&mut store, &grads);
        value
    })
}
