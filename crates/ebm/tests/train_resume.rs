//! A trainer saved half way and restored into a fresh trainer ends, bit for bit, where an
//! uninterrupted one does, when each step draws from `step_rng(seed, step)`.

use ebm::data::Toy2d;
use ebm::energy::{EnergyModel, MlpEnergy, MlpEnergyConfig};
use ebm::objective::{MethodObjective, MethodSpec, Objective};
use ebm::train::{Trainer, TrainerConfig, step_rng};
use ebm_nn::{Adam, AdamConfig, read_safetensors};

type Boxed = Box<dyn Objective<f32, dyn EnergyModel<f32>>>;

/// A fresh trainer of a small MLP energy by `method`, as a run built from its settings.
fn trainer(method: &str) -> Trainer<f32, dyn EnergyModel<f32>, Boxed> {
    let mut rng = step_rng(0, 0);
    let mlp = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 16, 16, 1]), &mut rng).unwrap();
    let model: Box<dyn EnergyModel<f32>> = Box::new(mlp);
    let sample = Toy2d::EightGaussians.sample::<f32, _>(1000, &mut rng);
    let MethodObjective::Energy(objective) = MethodSpec::new(method).build(&sample).unwrap() else {
        panic!("{method} trains a plain energy")
    };
    let adam = || Box::new(Adam::new(AdamConfig::default()).unwrap());
    let has_params = objective.params().is_some();
    let t = Trainer::new(model, objective, adam(), TrainerConfig::default());
    if has_params {
        t.with_aux_optimizer(adam())
    } else {
        t
    }
}

/// Steps `from + 1..=to`, each on its own (seed, step) stream.
fn run(t: &mut Trainer<f32, dyn EnergyModel<f32>, Boxed>, from: u64, to: u64) {
    for step in from + 1..=to {
        let mut rng = step_rng(0, step);
        let batch = Toy2d::EightGaussians.sample::<f32, _>(32, &mut rng);
        t.step(&batch, &mut rng).unwrap();
    }
}

#[test]
fn a_restored_trainer_continues_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("ebm-train-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Persistent chains, a replay buffer, and NCE's log-normaliser with its own Adam: every
    // kind of state besides the weights.
    for method in ["pcd", "replay", "nce"] {
        let (whole, half) = (dir.join("whole"), dir.join("half"));
        let mut a = trainer(method);
        run(&mut a, 0, 20);
        a.save(&whole).unwrap();

        let mut b = trainer(method);
        run(&mut b, 0, 10);
        b.save(&half).unwrap();
        let mut c = trainer(method);
        c.load_checkpoint(&half).unwrap();
        assert_eq!(c.steps(), 10);
        run(&mut c, 10, 20);
        c.save(&half).unwrap();

        // Every tensor of the two files (weights, Adam moments, chains, log Z) is identical.
        let x = read_safetensors::<f32>(&whole).unwrap();
        let y = read_safetensors::<f32>(&half).unwrap();
        assert!(x.tensors.keys().any(|k| k.starts_with("objective.")) || method == "dsm");
        assert_eq!(x, y, "{method}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_of_another_architecture_is_refused_by_name() {
    let path = std::env::temp_dir().join(format!("ebm-train-arch-{}.st", std::process::id()));
    trainer("dsm").save(&path).unwrap();
    let mut rng = step_rng(0, 0);
    let wide = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 32, 1]), &mut rng).unwrap();
    let model: Box<dyn EnergyModel<f32>> = Box::new(wide);
    let MethodObjective::Energy(dsm) = MethodSpec::new("dsm").build(&rng_sample()).unwrap() else {
        panic!("dsm trains a plain energy")
    };
    let adam = Box::new(Adam::new(AdamConfig::default()).unwrap());
    let mut t = Trainer::new(model, dsm, adam, TrainerConfig::default());
    let err = t.load_checkpoint(&path).unwrap_err().to_string();
    assert!(err.contains("energy.0.weight"), "{err}");
    assert_eq!(t.steps(), 0);
    std::fs::remove_file(&path).unwrap();
}

fn rng_sample() -> ebm_tensor::Tensor<f32> {
    Toy2d::EightGaussians.sample(100, &mut step_rng(1, 0))
}
