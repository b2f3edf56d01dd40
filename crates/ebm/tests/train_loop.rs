//! The training loop: updates, the divergence watchdog, auxiliary parameters (shared and
//! min-max losses), observers and checkpoints, on objectives small enough to follow by hand.

use ebm::Error;
use ebm::energy::{EnergyModel, GaussianEnergy, load_energy};
use ebm::objective::{Metrics, Objective, ObjectiveStep};
use ebm::train::{Trainer, TrainerConfig};
use ebm_nn::{Optimizer, ParamStore, Sgd, SgdConfig};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

type Model = dyn EnergyModel<f64>;

fn sgd(lr: f64) -> Box<dyn Optimizer<f64>> {
    Box::new(
        Sgd::new(SgdConfig {
            lr,
            ..SgdConfig::default()
        })
        .unwrap(),
    )
}

fn gaussian() -> Box<Model> {
    Box::new(GaussianEnergy::<f64>::new(2).unwrap())
}

/// Mean energy of the batch, times `scale` (NaN makes the loss non-finite); with a learned
/// scalar `c` pulled to 3 by (c - 3)^2, either in the same loss or as a min-max aux loss.
struct Toy {
    scale: f64,
    own: Option<ParamStore<f64>>,
    min_max: bool,
}

impl Toy {
    fn plain(scale: f64) -> Self {
        Toy {
            scale,
            own: None,
            min_max: false,
        }
    }

    fn with_c(min_max: bool) -> Self {
        let mut store = ParamStore::new();
        store
            .insert("c", Tensor::zeros([1]).set_requires_grad(true))
            .unwrap();
        Toy {
            scale: 1.0,
            own: Some(store),
            min_max,
        }
    }

    fn c(&self) -> f64 {
        self.own.as_ref().unwrap().expect("c").item()
    }
}

impl Objective<f64, Model> for Toy {
    fn step(
        &mut self,
        energy: &Model,
        batch: &Tensor<f64>,
        _rng: &mut dyn rand::Rng,
    ) -> Result<ObjectiveStep<f64>, Error> {
        let mut loss = energy.energy(batch).mean().mul_scalar(self.scale);
        let mut aux_loss = None;
        if let Some(store) = &self.own {
            let pull = store.expect("c").add_scalar(-3.0).square().sum();
            if self.min_max {
                // The objective's parameter maximises -(c - 3)^2 + ..., i.e. minimises pull.
                aux_loss = Some(pull);
            } else {
                loss = &loss + &pull;
            }
        }
        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        Ok(ObjectiveStep {
            loss,
            aux_loss,
            metrics,
        })
    }

    fn params(&self) -> Option<&ParamStore<f64>> {
        self.own.as_ref()
    }

    fn params_mut(&mut self) -> Option<&mut ParamStore<f64>> {
        self.own.as_mut()
    }
}

fn batch() -> Tensor<f64> {
    Tensor::from_f64s(&[2.0, 1.0, 0.0, -1.0], [2, 2])
}

#[test]
fn a_step_moves_the_parameters_by_the_gradient() {
    // E = 0.5 |x - mu|^2 at the standard normal start: d mean E / d mu = mu - mean x.
    let mut trainer = Trainer::new(gaussian(), Toy::plain(1.0), sgd(0.1), Default::default());
    let mut rng = StdRng::seed_from_u64(0);
    let metrics = trainer.step(&batch(), &mut rng).unwrap();
    let mean = trainer.model().params().expect("mean").to_f64s();
    // mu' = 0 - 0.1 (0 - [1, 0]) = [0.1, 0]
    assert!(
        (mean[0] - 0.1).abs() < 1e-12 && mean[1].abs() < 1e-12,
        "{mean:?}"
    );
    assert!(metrics.get("grad_norm").unwrap() > 0.0);
    assert_eq!(trainer.steps(), 1);
}

#[test]
fn a_non_finite_loss_stops_with_the_step_and_changes_nothing() {
    let mut trainer = Trainer::new(
        gaussian(),
        Toy::plain(f64::NAN),
        sgd(0.1),
        Default::default(),
    );
    let before = trainer.model().params().expect("mean").to_f64s();
    let mut rng = StdRng::seed_from_u64(0);
    let err = trainer.step(&batch(), &mut rng).unwrap_err();
    assert!(
        matches!(err, Error::Diverged { step: 1, ref quantity, .. } if quantity == "loss"),
        "{err}"
    );
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
    assert_eq!(trainer.model().params().expect("mean").to_f64s(), before);
    assert_eq!(trainer.steps(), 0);
}

#[test]
fn objective_parameters_need_an_optimiser_and_train_with_the_shared_loss() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut trainer = Trainer::new(gaussian(), Toy::with_c(false), sgd(0.1), Default::default());
    let err = trainer.step(&batch(), &mut rng).unwrap_err();
    assert!(err.to_string().contains("with_aux_optimizer"), "{err}");

    let mut trainer = trainer.with_aux_optimizer(sgd(0.1));
    trainer.step(&batch(), &mut rng).unwrap();
    // c' = 0 - 0.1 * 2 (0 - 3) = 0.6
    assert!((trainer.objective().c() - 0.6).abs() < 1e-12);
}

#[test]
fn a_min_max_objective_updates_its_parameters_from_its_own_loss() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut trainer = Trainer::new(gaussian(), Toy::with_c(true), sgd(0.1), Default::default())
        .with_aux_optimizer(sgd(0.25));
    trainer.step(&batch(), &mut rng).unwrap();
    // c' = 0 - 0.25 * 2 (0 - 3) = 1.5; the model's loss does not depend on c.
    assert!((trainer.objective().c() - 1.5).abs() < 1e-12);
    let mean = trainer.model().params().expect("mean").to_f64s();
    assert!((mean[0] - 0.1).abs() < 1e-12);
}

#[test]
fn fit_reports_every_n_steps_and_the_last() {
    let config = TrainerConfig {
        observe_every: 3,
        ..Default::default()
    };
    let mut trainer = Trainer::new(gaussian(), Toy::plain(1.0), sgd(0.01), config);
    let mut rng = StdRng::seed_from_u64(0);
    let mut seen = Vec::new();
    let mut observer = |step: u64, m: &Metrics| seen.push((step, m.get("loss").is_some()));
    trainer
        .fit(7, &mut rng, |_| batch(), &mut observer)
        .unwrap();
    assert_eq!(seen, [(3, true), (6, true), (7, true)]);
}

#[test]
fn a_checkpoint_holds_the_model_the_optimiser_and_the_step() {
    let mut trainer = Trainer::new(gaussian(), Toy::with_c(false), sgd(0.1), Default::default())
        .with_aux_optimizer(sgd(0.1));
    let mut rng = StdRng::seed_from_u64(0);
    for _ in 0..3 {
        trainer.step(&batch(), &mut rng).unwrap();
    }
    let path = std::env::temp_dir().join(format!("ebm-train-{}.safetensors", std::process::id()));
    trainer.save(&path).unwrap();
    let (model, extras) = load_energy::<f64>(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    assert_eq!(
        model.params().expect("mean").to_f64s(),
        trainer.model().params().expect("mean").to_f64s()
    );
    assert_eq!(
        extras.metadata.get("trainer.step").map(String::as_str),
        Some("3")
    );
    assert!(extras.tensors.contains_key("objective.param.c"));
    assert!(extras.metadata.keys().any(|k| k.starts_with("optim.")));
}

#[test]
fn the_trainer_drives_nce_and_its_learned_normaliser() {
    use ebm::objective::nce::{Nce, NceConfig};
    use ebm_nn::{Adam, AdamConfig};

    // Data N([1, -1], I); a learnable Gaussian from N(0, I) and c from 0. NCE's c converges to
    // the model's log Z (here d/2 log 2 pi = 1.84 for an identity precision); after 600 steps
    // it must be within 0.15 of the model's current log Z, a loose bound for a short run (the
    // NCE tests check the tight one).
    let mut rng = StdRng::seed_from_u64(3);
    let data = &Tensor::<f64>::randn([4000, 2], &mut rng) + &Tensor::from_f64s(&[1.0, -1.0], [2]);
    let nce = Nce::fit_gaussian(NceConfig::default(), &data).unwrap();
    let adam = |lr| -> Box<dyn Optimizer<f64>> {
        Box::new(
            Adam::new(AdamConfig {
                lr,
                ..AdamConfig::default()
            })
            .unwrap(),
        )
    };
    let mut trainer = Trainer::new(gaussian(), nce, adam(0.03), Default::default())
        .with_aux_optimizer(adam(0.03));
    let mut last = Metrics::new();
    let mut observer = |_: u64, m: &Metrics| last = m.clone();
    trainer
        .fit(
            600,
            &mut rng,
            |rng| {
                let idx: Vec<usize> = (0..256)
                    .map(|_| rand::RngExt::random_range(rng, 0..4000))
                    .collect();
                data.index_select(0, &idx)
            },
            &mut observer,
        )
        .unwrap();
    let c = last.get("log_normalizer").unwrap();
    let model = trainer.into_model();
    let log_z = model
        .as_ref()
        .params()
        .expect("precision_log_diag")
        .to_f64s()
        .iter()
        .fold(std::f64::consts::TAU.ln(), |acc, l| acc - l);
    assert!(
        (c - log_z).abs() < 0.15,
        "c {c} vs the model's log Z {log_z}"
    );
    let mean = model.params().expect("mean").to_f64s();
    assert!(
        (mean[0] - 1.0).abs() < 0.15 && (mean[1] + 1.0).abs() < 0.15,
        "{mean:?}"
    );
}
