//! The pictures of a finished run: a sample of the training data and the model's own samples,
//! drawn by the method's sampler, handed to [`crate::report::write_report`].
//!
//! The samples start from uniform noise over the data's box and run [`SAMPLE_STEPS`] steps of
//! the method's MCMC kernel (Langevin, MALA or HMC, with the run's settings); methods without
//! a sampler use Langevin of step 0.01 (noise sqrt(0.02)), as `ebm sample` does. Points are
//! drawn only for data on the plane (the density figure is 2-D); noise-conditional energies
//! get the data only.

use super::setup::{Session, Setup};
use crate::sample::chains;
use anyhow::Result;
use ebm::energy::EnergyModel;
use ebm::objective::McmcKernel;
use ebm::sampler::{Hmc, Langevin, Mala};
use ebm::train::step_rng;
use ebm_tensor::Tensor;

/// Data points drawn over the density.
const DATA_POINTS: usize = 1000;
/// Chains of the model's samples.
const SAMPLE_CHAINS: usize = 500;
/// MCMC steps of each chain, from noise.
const SAMPLE_STEPS: usize = 500;
/// The random stream of the pictures: the number of no training step, so that drawing them
/// changes nothing in the run.
const STREAM: u64 = u64::MAX;

/// What to draw over the density, and how the samples were made.
pub struct Points {
    /// A sample of the training data, `[n, 2]`.
    pub data: Option<Tensor<f64>>,
    /// The model's samples, `[n, 2]`.
    pub samples: Option<Tensor<f64>>,
    /// One line saying how the samples were drawn, or why there are none.
    pub how: String,
}

/// The points of the run of `setup` (data on the plane only).
///
/// # Errors
/// A sampler setting that its constructor refuses (already checked by training).
pub fn points(setup: &Setup) -> Result<Points> {
    let mut rng = step_rng(setup.config.seed, STREAM);
    let n = setup
        .data
        .len()
        .map_or(DATA_POINTS, |len| len.min(DATA_POINTS));
    let data = setup.data.batch(n, &mut rng);
    if data.numel() != 2 * n {
        let how = "no points drawn: the data are not on the plane".to_string();
        return Ok(Points {
            data: None,
            samples: None,
            how,
        });
    }
    let data = Tensor::from_f64s(&data.to_f64s(), [n, 2]);
    let Session::Energy(trainer) = &setup.session else {
        let how = "no samples drawn: the energy is noise-conditional (use `ebm sample`)";
        return Ok(Points {
            data: Some(data),
            samples: None,
            how: how.into(),
        });
    };

    // Chains from uniform noise over the data's box, widened by a quarter on each side.
    let (low, high) = bounds(&data);
    let x0 = Tensor::<f32>::rand_uniform([SAMPLE_CHAINS, 2], low, high, &mut rng);
    let (kernel, name) = super::images::method_kernel(&setup.config)?;
    let model: &dyn EnergyModel<f32> = trainer.model();
    let drawn = match &kernel {
        McmcKernel::Langevin(c) => chains(
            &Langevin::new(c.clone())?,
            &mut rng,
            x0,
            model,
            SAMPLE_STEPS,
        ),
        McmcKernel::Mala(c) => chains(&Mala::new(c.clone())?, &mut rng, x0, model, SAMPLE_STEPS),
        McmcKernel::Hmc(c) => chains(&Hmc::new(c.clone())?, &mut rng, x0, model, SAMPLE_STEPS),
    };
    let (samples, how) = match drawn {
        Ok((state, _, _)) => {
            let x = &state.position;
            let how = format!(
                "{SAMPLE_CHAINS} samples: {SAMPLE_STEPS} steps of {name} from U[{low:.2}, {high:.2}]^2"
            );
            (
                Some(Tensor::from_f64s(&x.to_f64s(), [SAMPLE_CHAINS, 2])),
                how,
            )
        }
        Err(e) => (None, format!("no samples drawn: {name}: {e:#}")),
    };
    Ok(Points {
        data: Some(data),
        samples,
        how,
    })
}

/// The smallest and largest coordinate of `x`, widened by a quarter of the span each side.
fn bounds(x: &Tensor<f64>) -> (f64, f64) {
    let v = x.to_f64s();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.25 * (hi - lo).max(1e-3);
    (lo - pad, hi + pad)
}
