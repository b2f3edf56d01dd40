//! Conditional noise-contrastive estimation (Ceylan & Gutmann, "Conditional noise-contrastive
//! estimation of unnormalised models", ICML 2018; section 4 of Song & Kingma 2021, "How to
//! train your energy-based models"): tell each data point from a noisy copy of itself.
//!
//! Each data point x is paired with kappa noisy copies y = x + v z, z ~ N(0, I). The noise is
//! symmetric (p_c(y | x) = p_c(x | y)), so it cancels from the logit of the pair classifier,
//! and so does the normaliser of the model p(x) = exp(-E(x)) / Z:
//!
//! ```text
//! G(x, y) = log [ p(x) p_c(y | x) ] - log [ p(y) p_c(x | y) ] = E(y) - E(x)
//! L       = mean_(x, y) softplus(-G(x, y)) = mean_(x, y) softplus(E(x) - E(y))
//! ```
//!
//! For any v > 0 the minimiser over an energy family that contains the data's is the data's
//! energy up to an additive constant (the estimator is consistent, Ceylan & Gutmann, theorem 1);
//! nothing needs to be known about Z and no normaliser is learned.
//!
//! # The small-noise limit: score matching
//!
//! With a = E(x) - E(y) = -v g^T z - v^2/2 z^T H z - v^3/6 D^3E[z, z, z] + O(v^4) (g and H the
//! gradient and Hessian of E at x), and softplus(a) = log 2 + a/2 + a^2/8 + O(a^4) (softplus(a)
//! - a/2 = log(2 cosh(a/2)) is even, so there is no a^3 term), the expectation over z is
//!
//! ```text
//! E_z softplus(a) = log 2 - v^2/4 tr H + v^2/8 ||g||^2 + O(v^4)
//!                 = log 2 + v^2/4 [ 1/2 ||s||^2 + tr grad_x s ] + O(v^4)      (s = -g)
//! ```
//!
//! because the odd powers of z have mean zero. So `4 (L - log 2) / v^2` tends to the exact
//! score-matching objective (Hyvarinen 2005) with an O(v^2) error, and so does its gradient in
//! the energy's parameters: CNCE with small v is score matching, estimated without second
//! derivatives ([`conditional_nce_loss`] for a given noise; the check is in
//! `tests/objective_connections.rs`). Its variance grows like 1/v^2 as v -> 0 (the a/2 term
//! has mean O(v^2) but spread O(v)), which is why a moderate v is used in practice.
//!
//! Cost per step: one forward pass over the n data points and one over the kappa n noisy
//! copies, and the backward pass of both; no gradient in x, no sampler.

use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of [`ConditionalNce`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConditionalNceConfig {
    /// v, the scale of the conditional noise y = x + v z (finite, > 0). Default 0.1, for data
    /// of unit scale such as the 2-D sets. Small v approaches score matching and raises the
    /// variance of the loss like 1/v^2; large v makes pairs easy to tell apart and the
    /// estimator less efficient. Ceylan & Gutmann tune v so that the classifier is neither at
    /// chance nor perfect.
    pub noise_scale: f64,
    /// kappa, the noisy copies per data point (at least 1). Default 1.
    pub n_noise: usize,
}

impl Default for ConditionalNceConfig {
    fn default() -> Self {
        ConditionalNceConfig {
            noise_scale: 0.1,
            n_noise: 1,
        }
    }
}

/// Conditional noise-contrastive estimation (Ceylan & Gutmann 2018), with Gaussian conditional
/// noise y = x + v z:
///
/// ```text
/// L = mean_(i, j) softplus(E(x_i) - E(x_i + v z_ij)),   z_ij ~ N(0, I),  j = 1..kappa
/// ```
///
/// See the [module docs](self) for the derivation and the small-noise limit, which is exact
/// score matching: `4 (L - log 2) / v^2 -> E[1/2 ||s||^2 + tr grad_x s]` as v -> 0.
///
/// Assumptions: E finite wherever the data and its noisy copies lie; nothing about its
/// normaliser (the symmetric noise cancels it), nothing about derivatives in x.
///
/// Cost per step: a forward pass over n data points and kappa n noisy copies, and their
/// backward pass.
///
/// Metrics: `loss`, `accuracy` (the fraction of pairs with E(x) < E(y), that is classified
/// correctly), `energy_data` (mean E(x)), `energy_noise` (mean E(y)).
#[derive(Clone, Debug)]
pub struct ConditionalNce {
    config: ConditionalNceConfig,
}

impl ConditionalNce {
    /// The objective with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `noise_scale` is not finite and positive or `n_noise` is 0.
    pub fn new(config: ConditionalNceConfig) -> Result<Self, Error> {
        check_positive("conditional NCE noise_scale", config.noise_scale)?;
        if config.n_noise == 0 {
            return Err(Error::config(
                "conditional NCE n_noise",
                0,
                "at least 1 noisy copy per data point",
            ));
        }
        Ok(ConditionalNce { config })
    }

    /// The settings.
    pub fn config(&self) -> &ConditionalNceConfig {
        &self.config
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for ConditionalNce {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        let c = self.config;
        let batch = batch.detach();
        let x = if c.n_noise == 1 {
            batch
        } else {
            Tensor::concat(&vec![batch; c.n_noise], 0)
        };
        let z = Tensor::randn(x.shape().clone(), rng);
        let (loss, e_data, e_noise) = pair_terms(energy, &x, &z, c.noise_scale);
        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        no_grad(|| {
            let (ed, en) = (e_data.detach(), e_noise.detach());
            let correct = ed
                .to_f64s()
                .iter()
                .zip(en.to_f64s())
                .filter(|&(a, b)| *a < b)
                .count();
            metrics.set("accuracy", correct as f64 / ed.dim(0) as f64);
            metrics.set("energy_data", ed.mean().item());
            metrics.set("energy_noise", en.mean().item());
        });
        Ok(ObjectiveStep {
            loss,
            aux_loss: None,
            metrics,
        })
    }
}

/// The conditional NCE loss for given standard normal noise `z`:
///
/// ```text
/// L = mean_i softplus(E(x_i) - E(x_i + v z_i))
/// ```
///
/// differentiable in the energy's parameters (x and z are constants). [`ConditionalNce`]
/// draws z itself; this form lets the noise be chosen, for instance antithetic pairs (z, -z)
/// that cancel the odd powers of z and with them most of the variance at small v.
///
/// # Shapes
/// `x` and `z`: `[n, ...]`, the same; returns a scalar.
///
/// # Panics
/// When the shapes differ or `noise_scale` is not finite and positive.
pub fn conditional_nce_loss<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    x: &Tensor<T>,
    z: &Tensor<T>,
    noise_scale: f64,
) -> Tensor<T> {
    assert!(
        noise_scale > 0.0 && noise_scale.is_finite(),
        "conditional NCE needs a noise scale > 0, got {noise_scale}"
    );
    pair_terms(energy, &x.detach(), z, noise_scale).0
}

/// The loss, E(x) and E(y) for y = x + v z.
fn pair_terms<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    x: &Tensor<T>,
    z: &Tensor<T>,
    noise_scale: f64,
) -> (Tensor<T>, Tensor<T>, Tensor<T>) {
    assert_eq!(
        x.shape(),
        z.shape(),
        "conditional NCE: data and noise shapes differ"
    );
    let y = x + &z.detach().mul_scalar(noise_scale);
    let e_data = energy.energy(x);
    let e_noise = energy.energy(&y);
    let loss = (&e_data - &e_noise).softplus().mean();
    (loss, e_data, e_noise)
}
