//! Objectives from the derivative of a KL divergence along a dynamics (section 5.1 of Song &
//! Kingma, "How to train your energy-based models", 2021): start a dynamics that leaves the
//! model p_theta invariant at the data distribution, and make the data flow away as slowly as
//! possible. When p_theta = p_data nothing flows; the initial rate of flow needs no sample
//! from the model and no normaliser.
//!
//! - [`MinimumProbabilityFlow`] (Sohl-Dickstein, Battaglino & DeWeese, "New method for
//!   parameter estimation in probabilistic models: minimum probability flow", PRL 2011):
//!   binary data, a master equation that flips one bit at a time.
//! - [`MinimumVelocity`] (Movellan, "A minimum velocity approach to learning", 2008; Hyvarinen,
//!   "Connections between score matching, contrastive divergence, and pseudolikelihood for
//!   continuous-valued variables", IEEE TNN 2007): continuous data, one Langevin step, whose
//!   gradient tends to that of score matching as the step shrinks.

use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of [`MinimumProbabilityFlow`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinimumProbabilityFlowConfig {
    /// Minimise log K instead of K (default false). Both have the same minimisers and
    /// stationary points (the gradient is divided by K > 0); the log keeps the scale of the
    /// gradient tame when the model starts far from the data (K in the thousands), and is
    /// computed with a log-sum-exp, so it never overflows.
    pub log_loss: bool,
}

/// Minimum probability flow for binary data with single-bit-flip connectivity.
///
/// A master equation whose transition rate from state x to a neighbour x' (x with one bit
/// flipped) is Gamma(x' <- x) = exp((E(x) - E(x')) / 2) satisfies detailed balance with
/// p_theta(x) ∝ exp(-E(x)), so p_theta is its stationary distribution. Started at the data,
/// the initial rate at which probability flows out of the data states is, to first order in
/// time, the MPF objective
///
/// ```text
/// K(theta) = 1/n sum_i sum_{k=1..d} exp((E(x_i) - E(flip_k(x_i))) / 2)
/// ```
///
/// (the paper sums over the neighbours that are not themselves data states; summing over all
/// neighbours, as here and in most later work, adds the flow between data states; both forms
/// have zero expected gradient at p_theta = p_data). K is convex in the parameters of an exponential family (such as an
/// RBM's joint energy, not its free energy) and is minimised at p_theta = p_data in the limit
/// of infinite data when the model family contains the data distribution: the expected
/// gradient of K at the true parameters is zero, since
/// E_p[exp((E(x) - E(x'))/2) (grad E(x) - grad E(x'))] = 0 by symmetry of x <-> x' under p.
///
/// Assumptions: data in {0, 1}^d (any sample shape `[n, ...]`, flattened to d values; checked
/// at every step). The energy needs no gradient in x, no sampler and no normaliser.
///
/// Cost per step: one forward pass of the energy over the n (1 + d) states (the data and its
/// d one-bit flips, built as one `[n d, ...]` batch by tensor ops), then one backward pass.
///
/// Metrics: `loss` (K or log K), `flow` (K itself), `energy_data` (mean E(x)) and
/// `energy_flipped` (mean energy of the flipped states).
///
/// # Example
/// ```
/// use ebm::energy::{BernoulliRbm, BernoulliRbmConfig};
/// use ebm::objective::{MinimumProbabilityFlow, MinimumProbabilityFlowConfig, Objective};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let rbm = BernoulliRbm::<f64>::new(
///     BernoulliRbmConfig { init_scale: 0.0, ..BernoulliRbmConfig::new(3, 2) },
///     &mut rng,
/// )?;
/// let data = Tensor::<f64>::from_f64s(&[0.0, 1.0, 1.0, 1.0, 0.0, 0.0], [2, 3]);
/// let mut mpf = MinimumProbabilityFlow::new(MinimumProbabilityFlowConfig::default())?;
/// // A flat model: every flip costs nothing, so K = d = 3.
/// let step = mpf.step(&rbm, &data, &mut rng)?;
/// assert!((step.metrics.get("flow").unwrap() - 3.0).abs() < 1e-12);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MinimumProbabilityFlow {
    config: MinimumProbabilityFlowConfig,
}

impl MinimumProbabilityFlow {
    /// MPF with the given settings.
    ///
    /// # Errors
    /// None at present (every setting is valid); the `Result` keeps the constructor's shape
    /// the same as the other objectives'.
    pub fn new(config: MinimumProbabilityFlowConfig) -> Result<Self, Error> {
        Ok(MinimumProbabilityFlow { config })
    }

    /// The settings.
    pub fn config(&self) -> &MinimumProbabilityFlowConfig {
        &self.config
    }

    /// The d one-bit flips of each sample of a binary batch `[n, ...]`, as a batch
    /// `[n d, ...]` without graph: row i d + k is x_i with its k-th value (in row-major order)
    /// flipped, flip_k(x) = x + (1 - 2 x) e_k.
    pub fn single_flips<T: Float>(batch: &Tensor<T>) -> Tensor<T> {
        let x = batch.detach().flatten_batch();
        let (n, d) = (x.dim(0), x.dim(1));
        let mut eye = vec![0.0; d * d];
        (0..d).for_each(|k| eye[k * d + k] = 1.0);
        let eye = Tensor::<T>::from_f64s(&eye, [1, d, d]);
        let x = x.unsqueeze(1); // [n, 1, d]
        let sign = x.affine(-2.0, 1.0); // 1 - 2x
        let flipped = &x + &(&sign * &eye); // [n, d, d]
        let mut dims = vec![n * d];
        dims.extend_from_slice(&batch.dims()[1..]);
        flipped.reshape(dims)
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for MinimumProbabilityFlow {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        _rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        if batch.rank() < 2 || batch.dim(0) == 0 || batch.numel() == 0 {
            return Err(Error::Shape {
                what: "minimum probability flow data batch".into(),
                expected: "[n, ...] with n >= 1 and at least one unit per sample".into(),
                found: batch.dims().to_vec(),
            });
        }
        if let Some(v) = batch.to_f64s().into_iter().find(|&v| v != 0.0 && v != 1.0) {
            return Err(Error::config(
                "minimum probability flow data value",
                v,
                "binary data: every value 0 or 1 (threshold or sample continuous data first)",
            ));
        }
        let n = batch.dim(0);
        let d = batch.numel() / n;

        // One pass of the energy over the data and its flips together.
        let flips = Self::single_flips(batch);
        let states = Tensor::concat(&[batch.detach(), flips], 0);
        let energies = energy.energy(&states);
        let e_data = energies.narrow(0, 0, n);
        let e_flip = energies.narrow(0, n, n * d).reshape([n, d]);

        // Half energy drops of each flip: (E(x_i) - E(flip_k(x_i))) / 2, [n, d].
        let half_drop = (&e_data.unsqueeze(1) - &e_flip).mul_scalar(0.5);
        let loss = if self.config.log_loss {
            // log K = logsumexp over all n d entries - log n.
            half_drop
                .reshape([n * d])
                .logsumexp(0, false)
                .add_scalar(-(n as f64).ln())
        } else {
            half_drop.exp().sum().mul_scalar(1.0 / n as f64)
        };
        let flow = if self.config.log_loss {
            loss.item().exp()
        } else {
            loss.item()
        };

        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        metrics.set("flow", flow);
        metrics.set("energy_data", e_data.mean().item());
        metrics.set("energy_flipped", e_flip.mean().item());
        Ok(ObjectiveStep {
            loss,
            aux_loss: None,
            metrics,
        })
    }
}

/// Settings of [`MinimumVelocity`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinimumVelocityConfig {
    /// The Langevin step size eps (default 0.01): x' = x - eps grad E(x) + sqrt(2 eps) z. The
    /// gradient's bias against score matching is O(eps); its variance grows as eps shrinks
    /// (without `antithetic`, as 1/eps).
    pub step_size: f64,
    /// Pair every noise draw z with -z (default true): the two steps' first-order noise terms
    /// cancel exactly, which removes the O(1/sqrt(eps)) part of the estimator's noise. Costs
    /// a second batch of n states.
    pub antithetic: bool,
}

impl Default for MinimumVelocityConfig {
    fn default() -> Self {
        MinimumVelocityConfig {
            step_size: 0.01,
            antithetic: true,
        }
    }
}

/// Minimum velocity learning: the rate at which one Langevin step moves the data away from
/// the model, with the step's samples held fixed.
///
/// With x ~ p_data, x' = x - eps grad_x E(x) + sqrt(2 eps) z (z ~ N(0, I), one step of the
/// unadjusted Langevin algorithm, which leaves p_theta invariant as eps -> 0) and sg the stop
/// gradient,
///
/// ```text
/// L(theta) = 1/eps mean_i [E(x_i) - E(sg(x'_i))]
/// ```
///
/// Its gradient, 1/eps (E_data[grad_theta E(x)] - E_{x'}[grad_theta E(x')]), is contrastive
/// divergence with one Langevin step from the data, scaled by 1/eps. Expanding E(x') to second
/// order in x' - x (Hyvarinen 2007; Movellan 2008) gives
///
/// ```text
/// grad_theta L = grad_theta E_data[1/2 |grad_x E(x)|^2 - tr grad_x^2 E(x)] + O(eps)
///              = grad_theta J_SM(theta) + O(eps),
/// ```
///
/// the gradient of the score matching objective J_SM = E[1/2 |s|^2 + tr grad s] with
/// s = -grad_x E: in the limit eps -> 0 minimum velocity learning is score matching, and
/// 2 J_SM + const = -d/dt KL(q_t || p_theta) at t = 0 for the data q_t diffused by Langevin
/// dynamics, the "velocity" that it minimises (Song & Kingma 2021, section 5.1). The loss
/// value itself, eps (|grad E|^2 - tr grad^2 E) / eps to first order, is a diagnostic, not
/// J_SM.
///
/// Bias for finite eps: the fixed point is where one ULA step maps the data to a distribution
/// with the same expected sufficient statistics. For a Gaussian energy with precision P fitted
/// to data of mean m and covariance S, it is mean m exactly and
/// P S + S P - eps P S P = 2 I, i.e. each covariance eigenvalue sigma becomes
/// eps / (1 - sqrt(1 - 2 eps / sigma)) = sigma - eps / 2 + O(eps^2 / sigma) (requires
/// eps < sigma / 2 for every eigenvalue).
///
/// Assumptions: continuous data; an energy differentiable in x (the step needs grad_x E; no
/// second derivative is formed). The step is drawn without graph.
///
/// Cost per step: one energy-and-gradient evaluation at the data (without graph), then one
/// forward pass over the n data and n (2n with `antithetic`) stepped states, and one backward
/// pass.
///
/// Metrics: `loss`, `energy_data` (mean E(x)), `energy_step` (mean E(x')), `grad_norm` (the
/// mean |grad_x E(x)|).
///
/// # Example
/// ```
/// use ebm::energy::GaussianEnergy;
/// use ebm::objective::{MinimumVelocity, MinimumVelocityConfig, Objective};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let data = Tensor::<f64>::randn([256, 2], &mut rng);
/// let model = GaussianEnergy::<f64>::new(2)?;
/// let mut mvl = MinimumVelocity::new(MinimumVelocityConfig::default())?;
/// let step = mvl.step(&model, &data, &mut rng)?;
/// assert!(step.metrics.get("loss").unwrap().is_finite());
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MinimumVelocity {
    config: MinimumVelocityConfig,
}

impl MinimumVelocity {
    /// Minimum velocity learning with the given settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a `step_size` that is not finite and positive.
    pub fn new(config: MinimumVelocityConfig) -> Result<Self, Error> {
        check_positive("minimum velocity step_size", config.step_size)?;
        Ok(MinimumVelocity { config })
    }

    /// The settings.
    pub fn config(&self) -> &MinimumVelocityConfig {
        &self.config
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for MinimumVelocity {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        if batch.rank() < 2 || batch.dim(0) == 0 {
            return Err(Error::Shape {
                what: "minimum velocity data batch".into(),
                expected: "[n, ...] with n >= 1".into(),
                found: batch.dims().to_vec(),
            });
        }
        let n = batch.dim(0);
        let eps = self.config.step_size;
        let x = batch.detach();

        // One ULA step from the data, without graph (the stop gradient).
        let (_, g) = energy.energy_and_grad(&x, false)?;
        let drift = &x - &g.mul_scalar(eps);
        let noise = Tensor::<T>::randn(x.dims().to_vec(), rng).mul_scalar((2.0 * eps).sqrt());
        let stepped = if self.config.antithetic {
            Tensor::concat(&[&drift + &noise, &drift - &noise], 0)
        } else {
            &drift + &noise
        };
        let m = stepped.dim(0);

        let energies = energy.energy(&Tensor::concat(&[x, stepped.detach()], 0));
        let e_data = energies.narrow(0, 0, n);
        let e_step = energies.narrow(0, n, m);
        let loss = (&e_data.mean() - &e_step.mean()).mul_scalar(1.0 / eps);

        let grad_norm = g
            .flatten_batch()
            .square()
            .sum_axes(&[1], false)
            .sqrt()
            .mean()
            .item();
        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        metrics.set("energy_data", e_data.mean().item());
        metrics.set("energy_step", e_step.mean().item());
        metrics.set("grad_norm", grad_norm);
        Ok(ObjectiveStep {
            loss,
            aux_loss: None,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_flips_flip_one_value_each() {
        let x = Tensor::<f64>::from_f64s(&[0.0, 1.0, 1.0], [1, 3]);
        let f = MinimumProbabilityFlow::single_flips(&x);
        assert_eq!(f.dims(), &[3, 3]);
        assert_eq!(
            f.to_f64s(),
            vec![1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn minimum_velocity_rejects_a_bad_step_size() {
        for eps in [0.0, -1.0, f64::NAN] {
            let config = MinimumVelocityConfig {
                step_size: eps,
                ..MinimumVelocityConfig::default()
            };
            assert!(MinimumVelocity::new(config).is_err());
        }
    }
}
