//! Learned Stein discrepancy (Grathwohl, Wang, Jacobsen, Duvenaud & Zemel 2020, "Learning the
//! Stein Discrepancy for Training and Evaluating Energy-Based Models", ICML): a Stein
//! discrepancy whose test function is a neural network trained alongside the energy.
//!
//! For the data distribution p, a model with score s = -grad_x E and any smooth critic
//! f: R^d -> R^d that decays in the tails, Stein's identity E_p[s_p^T f + tr(grad_x f)] = 0
//! turns the Stein term into a comparison of the two scores that needs neither the data's
//! score nor the model's normaliser:
//!
//! ```text
//! E_p[ s(x)^T f(x) + tr(grad_x f(x)) ] = E_p[ (s(x) - s_p(x))^T f(x) ]
//! ```
//!
//! The critic maximises this with an L2 penalty of strength lambda, whose maximiser and
//! maximum are
//!
//! ```text
//! f* = (s - s_p) / (2 lambda),   max_f E_p[(s - s_p)^T f] - lambda E_p||f||^2
//!                                   = E_p||s - s_p||^2 / (4 lambda)
//! ```
//!
//! a Fisher divergence; the energy minimises the Stein term under the current critic. With
//! lambda = 1/2 and an optimal critic, the energy's gradient is that of exact score matching.
//!
//! ```
//! use ebm::energy::GaussianEnergy;
//! use ebm::objective::Objective;
//! use ebm::objective::learned_stein::{LearnedStein, LearnedSteinConfig};
//! use ebm_tensor::Tensor;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let energy = GaussianEnergy::<f64>::new(2)?;
//! let mut lsd = LearnedStein::new(LearnedSteinConfig::default(), 2, &mut rng)?;
//! let batch = Tensor::randn([64, 2], &mut rng);
//! let step = lsd.step(&energy, &batch, &mut rng)?;
//! assert!(step.metrics.get("lsd").unwrap().is_finite());
//! assert!(step.aux_loss.is_some()); // the critic's own loss
//! # Ok::<(), ebm::Error>(())
//! ```

use super::score_matching::{TraceEstimator, per_sample_sum};
use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_nn::{Activation, Mlp, Module, ParamStore};
use ebm_tensor::autodiff::{hessian_trace, no_grad, vjp};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of [`LearnedStein`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnedSteinConfig {
    /// Hidden widths of the critic MLP d -> hidden... -> d. Default `[128, 128]`, the size of
    /// the energies used on the 2-D sets; empty gives an affine critic.
    pub hidden: Vec<usize>,
    /// The critic's nonlinearity, which must be smooth (not ReLU, leaky ReLU or identity: the
    /// trace term needs a useful derivative of f and the weights a gradient through it).
    /// Default SiLU, the swish of the paper.
    pub activation: Activation,
    /// lambda, the strength of the critic's L2 penalty (finite, > 0). Default 0.5: the optimal
    /// critic is then s - s_p, on the scale of the scores, and the energy's gradient under it
    /// equals that of exact score matching.
    pub l2_penalty: f64,
    /// tr(grad_x f): exact (default, d backward passes; fine for the 2-D sets) or Hutchinson's
    /// estimate with random probes.
    pub trace: TraceEstimator,
}

impl Default for LearnedSteinConfig {
    fn default() -> Self {
        LearnedSteinConfig {
            hidden: vec![128, 128],
            activation: Activation::Silu,
            l2_penalty: 0.5,
            trace: TraceEstimator::Exact,
        }
    }
}

/// Learned Stein discrepancy: a min-max objective between the energy and a critic MLP
/// f: R^d -> R^d that this objective owns (see the [module docs](self) for why it works).
///
/// ```text
/// t_i     = s(x_i)^T f(x_i) + tr(grad_x f(x_i)),        s = -grad_x E
/// LSD     = mean_i t_i                                   (the energy minimises it)
/// critic  : maximises mean_i t_i - lambda mean_i ||f(x_i)||^2, with s detached
/// ```
///
/// [`Objective::step`] returns `loss` = LSD with the critic detached, and `aux_loss` = minus
/// the critic's objective with the energy detached; a [`crate::train::Trainer`] with an
/// auxiliary optimiser takes one step of each per batch. The critic should keep up with the
/// energy: a learning rate for it a few times that of the energy, or a few steps of the
/// critic alone at the start, both help. Its weights are [`Objective::params`] (names
/// `critic.0.weight`, ...), so checkpoints keep them.
///
/// With Hutchinson's trace, tr(grad_x f) ~ mean_k v_k^T grad_x(v_k^T f) over `n_probes`
/// probes v_k with E[v v^T] = I: unbiased, so LSD's gradients stay unbiased too.
///
/// Assumptions: E differentiable in x; the data density differentiable with f p vanishing at
/// infinity (Stein's identity); batches `[n, d]` with the d given to [`LearnedStein::new`].
/// The discrepancy reaches the Fisher divergence only as far as the critic class contains
/// (s - s_p) / (2 lambda).
///
/// Cost per step, for a batch of n in dimension d: one forward and one recorded backward pass
/// of the energy (the score), one forward pass of the critic and d recorded vector-Jacobian
/// products for the exact trace (`n_probes` with Hutchinson's), then the weight gradients of
/// both losses: about score matching's cost plus that of the critic.
///
/// Metrics: `loss` (= `lsd`), `lsd` (mean Stein term), `critic_l2` (mean ||f(x)||^2).
#[derive(Clone, Debug)]
pub struct LearnedStein<T: Float> {
    config: LearnedSteinConfig,
    critic: Mlp,
    params: ParamStore<T>,
}

impl<T: Float> LearnedStein<T> {
    /// The objective for data of dimension `dim`, with a freshly initialised critic.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `dim` 0, an `l2_penalty` that is not finite and positive,
    /// a piecewise-linear activation with hidden layers, Hutchinson's `n_probes` 0, or a zero
    /// hidden width.
    pub fn new<R: Rng + ?Sized>(
        config: LearnedSteinConfig,
        dim: usize,
        rng: &mut R,
    ) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::config(
                "learned Stein discrepancy dim",
                0,
                "the data dimension d >= 1",
            ));
        }
        check_positive("learned Stein discrepancy l2_penalty", config.l2_penalty)?;
        if !config.hidden.is_empty() && config.activation.is_piecewise_linear() {
            return Err(Error::config(
                "learned Stein discrepancy critic activation",
                config.activation,
                "a smooth activation such as silu, softplus or tanh",
            ));
        }
        if let TraceEstimator::Hutchinson { n_probes: 0, .. } = config.trace {
            return Err(Error::config(
                "learned Stein discrepancy Hutchinson n_probes",
                0,
                "at least 1 probe per sample",
            ));
        }

        let widths: Vec<usize> = std::iter::once(dim)
            .chain(config.hidden.iter().copied())
            .chain(std::iter::once(dim))
            .collect();
        let mut params = ParamStore::new();
        let critic = Mlp::new(&mut params, "critic", &widths, config.activation, rng)?;
        Ok(LearnedStein {
            config,
            critic,
            params,
        })
    }

    /// The settings.
    pub fn config(&self) -> &LearnedSteinConfig {
        &self.config
    }

    /// The data dimension d.
    pub fn dim(&self) -> usize {
        self.critic.in_features()
    }

    /// The critic f(x), with its graph in the critic's weights and in `x`.
    ///
    /// # Shapes
    /// `[n, d] -> [n, d]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` is not `[n, d]` with this objective's d.
    pub fn critic(&self, x: &Tensor<T>) -> Result<Tensor<T>, Error> {
        self.check_batch(x)?;
        Ok(self.critic.forward(&self.params, x))
    }

    /// tr(grad_x f(x)) per sample with the configured estimator, detached: `[n, d] -> [n]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for a batch of another shape; an error of the autodiff engine.
    pub fn divergence(&self, x: &Tensor<T>, rng: &mut dyn Rng) -> Result<Tensor<T>, Error> {
        self.check_batch(x)?;
        let x = x.detach().set_requires_grad(true);
        let f = self.critic.forward(&self.params, &x);
        Ok(self.trace(&f, &x, false, rng)?.detach())
    }

    /// tr(grad_x f) `[n]` for the critic's output `f` recorded at the leaf `x`.
    fn trace(
        &self,
        f: &Tensor<T>,
        x: &Tensor<T>,
        create_graph: bool,
        rng: &mut dyn Rng,
    ) -> Result<Tensor<T>, Error> {
        match self.config.trace {
            TraceEstimator::Exact => Ok(hessian_trace(f, x, create_graph)?),
            TraceEstimator::Hutchinson { n_probes, probe } => {
                // v^T J v from the vector-Jacobian product J^T v, averaged over the probes.
                let mut sum: Option<Tensor<T>> = None;
                for _ in 0..n_probes {
                    let v = probe.sample(x.shape().clone(), rng);
                    let vjv = per_sample_sum(&(&vjp(f, x, &v, create_graph)? * &v));
                    sum = Some(match sum {
                        Some(s) => &s + &vjv,
                        None => vjv,
                    });
                }
                let sum = sum.expect("validated: n_probes >= 1");
                Ok(sum.mul_scalar(1.0 / n_probes as f64))
            }
        }
    }

    /// A batch `[n, d]` with n >= 1 and this objective's d.
    fn check_batch(&self, x: &Tensor<T>) -> Result<(), Error> {
        if x.rank() != 2 || x.dim(0) == 0 || x.dim(1) != self.dim() {
            return Err(Error::Shape {
                what: "learned Stein discrepancy batch".into(),
                expected: format!("[n, {}] with n >= 1 (the critic's dimension)", self.dim()),
                found: x.dims().to_vec(),
            });
        }
        Ok(())
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for LearnedStein<T> {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        self.check_batch(batch)?;
        let lambda = self.config.l2_penalty;

        // The model's score and the critic at the same leaf, both with their graphs.
        let x = batch.detach().set_requires_grad(true);
        let (_, g) = energy.energy_and_grad(&x, true)?;
        let score = -&g;
        let f = self.critic.forward(&self.params, &x);
        let trace = self.trace(&f, &x, true, rng)?;

        // The energy minimises the Stein term under a fixed critic.
        let energy_terms = &per_sample_sum(&(&score * &f.detach())) + &trace.detach();
        let loss = energy_terms.mean();

        // The critic maximises the penalised Stein term under a fixed energy.
        let critic_terms = &per_sample_sum(&(&score.detach() * &f)) + &trace;
        let critic_l2 = per_sample_sum(&f.square()).mean();
        let aux_loss = &critic_l2.mul_scalar(lambda) - &critic_terms.mean();

        let mut metrics = Metrics::new();
        let lsd = loss.item();
        metrics.set("loss", lsd);
        metrics.set("lsd", lsd);
        metrics.set("critic_l2", no_grad(|| critic_l2.item()));
        Ok(ObjectiveStep {
            loss,
            aux_loss: Some(aux_loss),
            metrics,
        })
    }

    fn params(&self) -> Option<&ParamStore<T>> {
        Some(&self.params)
    }

    fn params_mut(&mut self) -> Option<&mut ParamStore<T>> {
        Some(&mut self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::GaussianEnergy;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn the_step_is_the_mean_stein_term_of_its_parts() {
        let mut rng = StdRng::seed_from_u64(0);
        let config = LearnedSteinConfig {
            hidden: vec![8],
            ..LearnedSteinConfig::default()
        };
        let mut lsd = LearnedStein::<f64>::new(config, 3, &mut rng).unwrap();
        let energy = GaussianEnergy::<f64>::new(3).unwrap();
        let x = Tensor::<f64>::randn([7, 3], &mut rng).mul_scalar(1.5);
        let step = lsd.step(&energy, &x, &mut rng).unwrap();

        // s = -x for the standard normal; the parts evaluated separately.
        let f = lsd.critic(&x).unwrap().detach().to_f64s();
        let div = lsd.divergence(&x, &mut rng).unwrap().to_f64s();
        let xs = x.to_f64s();
        let dot: f64 = xs.iter().zip(&f).map(|(a, b)| -a * b).sum();
        let want = (dot + div.iter().sum::<f64>()) / 7.0;
        let l2 = f.iter().map(|v| v * v).sum::<f64>() / 7.0;
        // The same sums in another order: rounding only.
        assert!((step.metrics.get("lsd").unwrap() - want).abs() < 1e-12);
        assert!((step.metrics.get("critic_l2").unwrap() - l2).abs() < 1e-12);
        let aux = step.aux_loss.unwrap().item();
        assert!((aux - (0.5 * l2 - want)).abs() < 1e-12, "{aux}");
    }

    #[test]
    fn invalid_settings_and_batches_are_rejected() {
        let mut rng = StdRng::seed_from_u64(1);
        let bad = |config: LearnedSteinConfig, dim: usize| {
            LearnedStein::<f64>::new(config, dim, &mut StdRng::seed_from_u64(0))
                .unwrap_err()
                .to_string()
        };
        assert!(bad(LearnedSteinConfig::default(), 0).contains("dim"));
        for l2_penalty in [0.0, -1.0, f64::NAN] {
            let c = LearnedSteinConfig {
                l2_penalty,
                ..LearnedSteinConfig::default()
            };
            assert!(bad(c, 2).contains("l2_penalty"));
        }
        let relu = LearnedSteinConfig {
            activation: Activation::Relu,
            ..LearnedSteinConfig::default()
        };
        assert!(bad(relu, 2).contains("smooth activation"));
        let probes = LearnedSteinConfig {
            trace: TraceEstimator::Hutchinson {
                n_probes: 0,
                probe: Default::default(),
            },
            ..LearnedSteinConfig::default()
        };
        assert!(bad(probes, 2).contains("n_probes"));

        let mut lsd = LearnedStein::<f64>::new(LearnedSteinConfig::default(), 2, &mut rng).unwrap();
        let energy = GaussianEnergy::<f64>::new(3).unwrap();
        let wrong = Tensor::<f64>::zeros([4, 3]);
        let err = lsd.step(&energy, &wrong, &mut rng).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
    }

    #[test]
    fn config_reads_from_json_and_rejects_unknown_fields() {
        let c: LearnedSteinConfig = serde_json::from_str(
            r#"{"hidden": [16], "l2_penalty": 2.0,
                "trace": {"hutchinson": {"n_probes": 2, "probe": "gaussian"}}}"#,
        )
        .unwrap();
        assert_eq!(c.hidden, [16]);
        assert_eq!(c.activation, Activation::Silu);
        assert_eq!(c.l2_penalty, 2.0);
        assert!(matches!(
            c.trace,
            TraceEstimator::Hutchinson { n_probes: 2, .. }
        ));
        let d: LearnedSteinConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(d, LearnedSteinConfig::default());
        assert!(serde_json::from_str::<LearnedSteinConfig>(r#"{"lambda": 1}"#).is_err());
    }
}
