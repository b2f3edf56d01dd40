//! Every training method on one 2-D problem, judged by the exact negative log-likelihood.
//!
//! The same MLP energy (2-64-64-1, SiLU, f32), the same data (`8gaussians`, fresh batches of
//! 128), the same optimiser (Adam at the learning rate the entry names, 2e-3 for most, decayed
//! along half a cosine; a second Adam at the entry's `aux_lr` for a method's own critic, flow
//! or log-normaliser) and the same seed are trained by each method; then the model is
//! normalised by quadrature on a grid over [-6, 6]^2 (which holds all but ~4e-6 of the data's
//! mass) and its NLL of 4,000 fresh test points is measured. The test asserts that each method comes within its own margin of the
//! best one, and that the best one comes close to the true density's NLL (2.83 nats), so that
//! "within a margin of the best" cannot pass by every method being equally bad.
//!
//! Why the margins differ: the methods do not estimate the same thing from a finite budget.
//! Score-based methods (score matching, KSD, minimum velocity, conditional NCE) see the data
//! only through local scores and are blind to the weights of well-separated modes (Wenliang &
//! Kanagawa 2020), which the network's smoothness then sets; some have noisy gradients (DSM
//! with a small sigma) or smooth the fit (KSD's kernel). Maximum likelihood sees the weights but
//! has a noisy gradient and a biased sampler (unadjusted, few steps); short-run MCMC does not
//! aim at a density at all. Each entry of the table says which applies.
//!
//! Each margin below is about twice the gap measured with this seed, so that the test fails
//! when a method breaks (a wrong sign, a lost term: tenths of a nat to several nats) but not
//! when a change of kernel reorders floating-point sums. Measured (seed 0):
//!
//! | method | dsm | esm | ssm-vr | replay | short-run | nce | cnce | ksd | lsd | fce | adversarial | mvl |
//! |---|---|---|---|---|---|---|---|---|---|---|---|---|
//! | NLL | 2.938 | 2.855 | 2.850 | 2.908 | 3.166 | 2.846 | 2.865 | 3.025 | 2.899 | 3.078 | 3.177 | 2.877 |
//!
//! against 2.833 for the true density.

use ebm::data::toy2d::eight_gaussians;
use ebm::energy::{EnergyModel, MlpEnergy, MlpEnergyConfig};
use ebm::objective::score_matching::{
    DenoisingScoreMatching, ExactScoreMatching, SlicedScoreMatching,
};
use ebm::objective::{
    Adversarial, Bandwidth, ChainInit, ConditionalNce, ConditionalNceConfig, FlowContrastive,
    KernelSteinDiscrepancy, KernelSteinDiscrepancyConfig, LearnedStein, LearnedSteinConfig,
    MaximumLikelihood, MaximumLikelihoodConfig, MinimumVelocity, MinimumVelocityConfig, Nce,
    NceConfig, Objective,
};
use ebm::sampler::RestartDistribution;
use ebm::train::{Trainer, TrainerConfig};
use ebm_nn::{Adam, AdamConfig, Optimizer};
use ebm_tensor::Tensor;
use ebm_tensor::autodiff::no_grad;
use rand::SeedableRng;
use rand::rngs::StdRng;

type Model = dyn EnergyModel<f32>;
type Method = Box<dyn Objective<f32, Model>>;

const BATCH: usize = 128;
const TEST_POINTS: usize = 4_000;
/// The NLL of the true density on the test points is 2.833 nats; the best method must come
/// within this of it (measured: 0.013).
const BEST_TO_TRUTH: f64 = 0.1;

/// The quadrature: [-LIM, LIM]^2 at `SIDE` x `SIDE` midpoints.
const LIM: f64 = 6.0;
const SIDE: usize = 240;

fn adam(lr: f64) -> Box<dyn Optimizer<f32>> {
    Box::new(
        Adam::new(AdamConfig {
            lr,
            ..AdamConfig::default()
        })
        .unwrap(),
    )
}

/// The model's mean negative log-likelihood of `test`, with log Z by the midpoint rule.
fn exact_nll(model: &Model, test: &Tensor<f32>) -> f64 {
    let h = 2.0 * LIM / SIDE as f64;
    let mut grid = Vec::with_capacity(2 * SIDE * SIDE);
    for i in 0..SIDE {
        for j in 0..SIDE {
            grid.push((-LIM + (i as f64 + 0.5) * h) as f32);
            grid.push((-LIM + (j as f64 + 0.5) * h) as f32);
        }
    }
    let grid = Tensor::from_vec(grid, [SIDE * SIDE, 2]);
    let (e_grid, e_test) = no_grad(|| (model.energy(&grid), model.energy(test)));
    let neg: Vec<f64> = e_grid.data().iter().map(|&e| -(e as f64)).collect();
    let max = neg.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_z = max + neg.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + 2.0 * h.ln();
    let mean_e = e_test.data().iter().map(|&e| e as f64).sum::<f64>() / test.dim(0) as f64;
    mean_e + log_z
}

/// Trains a fresh energy by `method` and returns its exact NLL of `test`.
fn train(method: Method, steps: u64, (lr, aux_lr): (f64, f64), test: &Tensor<f32>) -> f64 {
    let mut rng = StdRng::seed_from_u64(0);
    let energy = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 64, 64, 1]), &mut rng).unwrap();
    let model: Box<Model> = Box::new(energy);
    let mut trainer = Trainer::new(model, method, adam(lr), TrainerConfig::default());
    if trainer.objective().params().is_some() {
        trainer = trainer.with_aux_optimizer(adam(aux_lr));
    }
    for step in 0..steps {
        // Half a cosine from lr down to 5% of it: the last steps average the gradient's noise.
        let progress = step as f64 / steps as f64;
        let factor = 0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        trainer.optimizer_mut().set_lr(lr * factor);
        let batch = eight_gaussians::<f32, _>(BATCH, &mut rng);
        trainer.step(&batch, &mut rng).unwrap();
    }
    exact_nll(trainer.model(), test)
}

/// One method's entry: its objective, its budget, and its margin over the best NLL in nats.
struct Run {
    name: &'static str,
    method: Method,
    steps: u64,
    lr: f64,
    /// The learning rate of the objective's own parameters (a critic, a flow, log Z).
    aux_lr: f64,
    margin: f64,
}

impl Run {
    fn new<O: Objective<f32, Model> + 'static>(
        name: &'static str,
        objective: Result<O, ebm::Error>,
        steps: u64,
        lr: f64,
        margin: f64,
    ) -> Self {
        Run {
            name,
            method: Box::new(objective.unwrap()),
            steps,
            lr,
            aux_lr: lr,
            margin,
        }
    }

    fn aux_lr(self, aux_lr: f64) -> Self {
        Run { aux_lr, ..self }
    }
}

/// The learned Stein discrepancy with its default critic.
fn lsd() -> Result<LearnedStein<f32>, ebm::Error> {
    LearnedStein::new(
        LearnedSteinConfig::default(),
        2,
        &mut StdRng::seed_from_u64(1),
    )
}

fn uniform_box() -> RestartDistribution {
    RestartDistribution::Uniform {
        low: -4.0,
        high: 4.0,
    }
}

#[test]
fn every_method_comes_within_its_margin_of_the_best_nll() {
    let test = eight_gaussians::<f32, _>(TEST_POINTS, &mut StdRng::seed_from_u64(99));
    let fit_data = eight_gaussians::<f32, _>(4_000, &mut StdRng::seed_from_u64(98));

    // Knobs beyond the defaults, where the defaults were too slow for this budget: each is
    // named in its entry. Margins: about twice the gap to the best measured with this seed, at
    // least 0.1 nats (the spread of a short run's NLL over seeds, from the weights' noise).
    let pcd = MaximumLikelihoodConfig {
        n_steps: 10,
        ..MaximumLikelihoodConfig::default()
    };
    let short_run = MaximumLikelihoodConfig {
        chain_init: ChainInit::Noise(uniform_box()),
        n_steps: 40,
        ..MaximumLikelihoodConfig::default()
    };
    let cnce = ConditionalNceConfig {
        noise_scale: 0.5,
        ..ConditionalNceConfig::default()
    };
    let ksd = KernelSteinDiscrepancyConfig {
        bandwidth: Bandwidth::Fixed { h: 0.2 },
    };
    let runs = vec![
        // sigma 0.1: the gradient's variance grows like 1 / sigma^2, so it takes more (cheap)
        // steps than the other score-based methods; measured gap 0.09.
        Run::new(
            "dsm",
            DenoisingScoreMatching::new(Default::default()),
            8_000,
            2e-3,
            0.2,
        ),
        // Exact and sliced score matching, NCE, conditional NCE and minimum velocity: gaps
        // below 0.03.
        Run::new(
            "esm",
            ExactScoreMatching::new(Default::default()),
            1_500,
            2e-3,
            0.1,
        ),
        Run::new(
            "ssm-vr",
            SlicedScoreMatching::new(Default::default()),
            1_500,
            2e-3,
            0.1,
        ),
        // The replay buffer with 10 Langevin steps (not 20) per update, twice the updates at a
        // higher rate: the maximum-likelihood gradient is noisy, and resolving the eight modes
        // takes more updates than the score-based methods need; measured gap 0.06.
        Run::new("replay", MaximumLikelihood::new(pcd), 3_000, 4e-3, 0.15),
        // Short-run MCMC learns an energy whose 40-step chains from noise match the data, not
        // a density (Nijkamp et al. 2019 make the point themselves): the energy is shaped only
        // where those chains go, and its normalised density is blurred; measured gap 0.32.
        Run::new(
            "short-run",
            MaximumLikelihood::new(short_run),
            1_500,
            4e-3,
            0.6,
        ),
        Run::new(
            "nce",
            Nce::fit_gaussian(NceConfig::default(), &fit_data),
            6_000,
            2e-3,
            0.1,
        ),
        // v = 0.5 (default 0.1): with a small v the pairs are hard to tell apart and the
        // loss's gradient is mostly noise (variance ~ 1 / v^2).
        Run::new("cnce", ConditionalNce::new(cnce), 6_000, 2e-3, 0.1),
        // h = 0.2, about the modes' width (0.35); the median rules pick h near 0.9, which
        // smooths across the modes and learns a ring. Still the kernel smooths the fit:
        // measured gap 0.18.
        Run::new("ksd", KernelSteinDiscrepancy::new(ksd), 3_000, 2e-3, 0.35),
        // The critic (default MLP) at 3e-3 against the energy at 1e-3: the Stein term is only
        // a discrepancy while the critic keeps up with the energy; measured gap 0.05.
        Run::new("lsd", lsd(), 5_000, 1e-3, 0.15).aux_lr(3e-3),
        // The flow (noise) at a tenth of the energy's rate: a flow that moves as fast as the
        // energy chases it round the modes and the classification never settles. The flow
        // never quite covers the eight modes, so the energy stays blurred where the noise is
        // thin; measured gap 0.23.
        Run::new(
            "fce",
            FlowContrastive::new(Default::default(), &mut StdRng::seed_from_u64(1)),
            3_000,
            2e-3,
            0.45,
        )
        .aux_lr(2e-4),
        // The flow sampler minimises KL(q || p), which seeks modes: a smooth map from one
        // Gaussian bridges the eight modes thinly, so the energy's negative samples sit
        // partly between them and its gradient stays biased (the module docs say so). It
        // learns the ring and part of the modes: measured gap 0.33. The margin, 0.4, still
        // fails a plain ring (a density uniform in angle with the modes' radial profile:
        // NLL about 3.26, 0.41 behind) and a Gaussian fitted to the data (4.26).
        Run::new(
            "adversarial",
            Adversarial::new(Default::default(), &mut StdRng::seed_from_u64(1)),
            10_000,
            1e-3,
            0.4,
        )
        .aux_lr(1e-3),
        Run::new(
            "mvl",
            MinimumVelocity::new(MinimumVelocityConfig::default()),
            1_500,
            2e-3,
            0.1,
        ),
    ];

    let mut results = Vec::new();
    for Run {
        name,
        method,
        steps,
        lr,
        aux_lr,
        margin,
    } in runs
    {
        let start = std::time::Instant::now();
        let nll = train(method, steps, (lr, aux_lr), &test);
        eprintln!(
            "{name:>10}: NLL {nll:.3} ({:.1} s)",
            start.elapsed().as_secs_f64()
        );
        assert!(nll.is_finite(), "{name}: NLL {nll}");
        results.push((name, nll, margin));
    }
    let best = results.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    let truth = true_nll(&test);
    eprintln!("best {best:.3}, true density {truth:.3}");
    assert!(
        best - truth < BEST_TO_TRUTH,
        "best NLL {best} vs truth {truth}"
    );
    for (name, nll, margin) in results {
        assert!(
            nll - best < margin,
            "{name}: NLL {nll:.3} is more than {margin} nats above the best {best:.3}"
        );
    }
}

/// The true density's NLL of `test`: an equal mixture of 8 Gaussians of std 0.5 / 1.414 whose
/// centres lie at radius 4 / 1.414.
fn true_nll(test: &Tensor<f32>) -> f64 {
    let (radius, std) = (4.0 / 1.414, 0.5 / 1.414);
    let x = test.data();
    let mut total = 0.0;
    for p in x.chunks(2) {
        let mut density = 0.0;
        for k in 0..8 {
            let angle = k as f64 * std::f64::consts::FRAC_PI_4;
            let dx = p[0] as f64 - radius * angle.cos();
            let dy = p[1] as f64 - radius * angle.sin();
            density += (-(dx * dx + dy * dy) / (2.0 * std * std)).exp()
                / (8.0 * 2.0 * std::f64::consts::PI * std * std);
        }
        total -= density.ln();
    }
    total / test.dim(0) as f64
}
