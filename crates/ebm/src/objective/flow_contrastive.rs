//! Flow contrastive estimation (Gao, Nijkamp, Kingma, Xu, Dai & Wu, "Flow Contrastive
//! Estimation of Energy-Based Models", CVPR 2020; section 4 of Song & Kingma 2021): NCE whose
//! noise is a normalising flow trained to fool the classifier.
//!
//! With the model log p(x) = -E(x) - c (c a learned log-normaliser) and the flow's density q,
//! the logit and value of NCE ([`super::Nce`]) are
//!
//! ```text
//! G(x)        = -E(x) - c - log nu - log q(x)
//! V(E, c, q)  = mean_data softplus(-G(x)) + nu mean_noise softplus(G(y)),   y = g(z) ~ q
//! ```
//!
//! The energy and c minimise V (they classify); the flow maximises it (it makes its draws look
//! like data to the current model, and moves towards the data itself). The flow's draws are
//! reparameterised (y = g(z), z ~ N(0, I)), so V is differentiable in the flow through both
//! log q and y. At the equilibrium p = q = p_data, and c is the model's log-normaliser.

use super::nce::{accuracy, logistic_loss};
use super::{LOG_NORMALIZER, Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_nn::{ParamStore, RealNvp, RealNvpConfig, StateDict};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The prefix of the flow's tensors in [`FlowContrastive::params`] (`flow.0.0.weight`, ...).
pub const FLOW_PREFIX: &str = "flow";

/// The key of the flow's settings in [`FlowContrastive::state_dict`]'s metadata.
const KEY_FLOW_CONFIG: &str = "flow_config";

/// Settings of [`FlowContrastive`]. `Default` suits the 2-D sets: nu = 1, c = 0 at the start,
/// the default [`RealNvpConfig`] (8 couplings of 64-64, d = 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowContrastiveConfig {
    /// nu, flow draws per data sample (default 1): ceil(nu n) draws for n data samples.
    pub noise_ratio: f64,
    /// The starting value of the learned log-normaliser c (default 0).
    pub initial_log_normalizer: f64,
    /// The flow; its `dim` must be the number of values in a data sample.
    pub flow: RealNvpConfig,
}

impl Default for FlowContrastiveConfig {
    fn default() -> Self {
        FlowContrastiveConfig {
            noise_ratio: 1.0,
            initial_log_normalizer: 0.0,
            flow: RealNvpConfig::default(),
        }
    }
}

/// Flow contrastive estimation: NCE against a Real NVP flow that plays the other side of the
/// classification game (see the [module docs](self) for the formula).
///
/// Losses, and why one scalar serves c and the flow: the [`crate::train::Trainer`] takes the
/// energy's gradient from `loss` and the gradient of the objective's own parameters (c and the
/// flow) from `aux_loss`. c must descend V and the flow ascend it, so
///
/// ```text
/// loss     = V(E, c, q detached)                       (energy and c descend V)
/// aux_loss = V(E detached, c, q detached) - V(E detached, c detached, q)
/// ```
///
/// whose gradient in c is dV/dc and in the flow -dV/dq (its value is 0). In the second term
/// the energy is evaluated at the flow's draws with their graph, so that the flow's gradient
/// goes through grad_y E; that term also reaches the energy's parameters, which is why the
/// energy's gradient must come from `loss` alone (as the Trainer does).
///
/// Assumptions: samples are vectors, or flatten to d values (images are flattened for the
/// flow); the energy is differentiable in its input (for the flow's gradient); the model family
/// can represent the data. As any min-max game, it can oscillate: watch `accuracy`, which
/// should settle near 0.5-0.7 (Gao et al. keep the flow a step behind when it drifts above).
///
/// Cost per step: the flow's inverse pass over the n data samples (log q(x)) and forward pass
/// over ceil(nu n) draws, the energy on the n + ceil(nu n) samples and again on the draws
/// (with the graph to the flow), then one backward pass for each loss.
///
/// Knobs: `noise_ratio` (1), `initial_log_normalizer` (0), the flow's settings; the
/// optimisers are the Trainer's (Adam 1e-3 for the energy and 1e-4 to 1e-3 for c and the flow
/// work on the 2-D sets).
///
/// Parameters ([`FlowContrastive::params`]): [`LOG_NORMALIZER`] (c) and the flow's tensors
/// under [`FLOW_PREFIX`]`.`; the Trainer saves them with its checkpoints. The state dict holds
/// the flow's settings, checked on restore.
///
/// Metrics: `loss` (V), `accuracy` (of the classifier on data and draws), `log_normalizer`
/// (c), `flow_log_likelihood` (mean log q over the data batch), `energy_data`,
/// `energy_noise`.
///
/// # Example
/// ```
/// use ebm::objective::{FlowContrastive, FlowContrastiveConfig, Objective};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut fce = FlowContrastive::<f64>::new(FlowContrastiveConfig::default(), &mut rng)?;
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let data = Tensor::<f64>::randn([64, 2], &mut rng);
/// let step = fce.step(&energy, &data, &mut rng)?;
/// assert!(step.aux_loss.is_some());
/// assert!(step.metrics.get("flow_log_likelihood").unwrap() < 0.0);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FlowContrastive<T: Float> {
    config: FlowContrastiveConfig,
    flow: RealNvp,
    params: ParamStore<T>,
}

impl<T: Float> FlowContrastive<T> {
    /// The objective with a new flow (the identity: q = N(0, I) at the start).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a `noise_ratio` that is not finite and positive, an
    /// `initial_log_normalizer` that is not finite, or invalid flow settings.
    pub fn new<R: Rng + ?Sized>(config: FlowContrastiveConfig, rng: &mut R) -> Result<Self, Error> {
        check_positive("flow contrastive noise_ratio", config.noise_ratio)?;
        if !config.initial_log_normalizer.is_finite() {
            return Err(Error::config(
                "flow contrastive initial_log_normalizer",
                config.initial_log_normalizer,
                "a finite number",
            ));
        }
        let mut params = ParamStore::new();
        params.insert(
            LOG_NORMALIZER,
            Tensor::scalar(config.initial_log_normalizer),
        )?;
        let flow = RealNvp::new(&mut params, FLOW_PREFIX, &config.flow, rng)?;
        Ok(FlowContrastive {
            config,
            flow,
            params,
        })
    }

    /// The settings.
    pub fn config(&self) -> &FlowContrastiveConfig {
        &self.config
    }

    /// The flow (its tensors are in [`FlowContrastive::params`]).
    pub fn flow(&self) -> &RealNvp {
        &self.flow
    }

    /// c and the flow's tensors (as [`Objective::params`], without naming the energy type).
    pub fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    /// The objective's parameters, for an optimiser step or to load trained weights.
    pub fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    /// The current value of the learned log-normaliser c.
    pub fn log_normalizer(&self) -> f64 {
        self.params.expect(LOG_NORMALIZER).item()
    }

    /// The flow's log-density of a batch `[n, ...]` (flattened to `[n, d]`), with its graph.
    ///
    /// # Panics
    /// When a sample does not hold d values.
    #[track_caller]
    pub fn flow_log_prob(&self, x: &Tensor<T>) -> Tensor<T> {
        let n = x.dim(0);
        self.flow
            .log_prob(&self.params, &x.reshape([n, x.numel() / n.max(1)]))
    }

    /// The number of flow draws for `n` data samples: ceil(nu n), at least 1.
    pub fn noise_count(&self, n: usize) -> usize {
        ((self.config.noise_ratio * n as f64).ceil() as usize).max(1)
    }

    /// The flow's settings in the metadata (its weights are parameters).
    pub fn state_dict(&self) -> StateDict<T> {
        flow_state_dict(&self.config.flow)
    }

    /// Checks that a saved state comes from a flow with the same settings.
    ///
    /// # Errors
    /// [`Error::Restore`] when the saved flow settings are missing or differ.
    pub fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        check_flow_state("flow contrastive estimation", &self.config.flow, state)
    }

    /// The samples of a batch as flow vectors `[n, d]`, or an error naming the shapes.
    fn as_vectors(&self, batch: &Tensor<T>) -> Result<Tensor<T>, Error> {
        as_flow_vectors(batch, self.flow.dim(), "flow contrastive data batch")
    }
}

/// A state dict holding the flow's settings in its metadata.
pub(crate) fn flow_state_dict<T: Float>(flow: &RealNvpConfig) -> StateDict<T> {
    let mut state = StateDict::new();
    let json = serde_json::to_string(flow).expect("plain settings serialise");
    state.metadata.insert(KEY_FLOW_CONFIG.into(), json);
    state
}

/// Checks that `state` holds the flow settings `flow`; `what` names the objective.
pub(crate) fn check_flow_state<T: Float>(
    what: &str,
    flow: &RealNvpConfig,
    state: &StateDict<T>,
) -> Result<(), Error> {
    let restore = |reason: String| Error::Restore {
        what: what.into(),
        reason,
    };
    let Some(json) = state.metadata.get(KEY_FLOW_CONFIG) else {
        return Err(restore(format!(
            "the saved state has no {KEY_FLOW_CONFIG:?}; save it with the same objective"
        )));
    };
    let saved: RealNvpConfig =
        serde_json::from_str(json).map_err(|e| restore(format!("its flow settings: {e}")))?;
    if &saved != flow {
        return Err(restore(format!(
            "it was saved with the flow {saved:?}, this objective has {flow:?}; build it with the saved settings"
        )));
    }
    Ok(())
}

/// A batch `[n, ...]` as flow vectors `[n, d]` (detached), or an error naming the shapes.
pub(crate) fn as_flow_vectors<T: Float>(
    batch: &Tensor<T>,
    d: usize,
    what: &str,
) -> Result<Tensor<T>, Error> {
    let n = if batch.rank() == 0 { 0 } else { batch.dim(0) };
    if n == 0 || batch.numel() != n * d {
        return Err(Error::Shape {
            what: what.into(),
            expected: format!("[n, ...] with n >= 1 and {d} values per sample (flow dim)"),
            found: batch.dims().to_vec(),
        });
    }
    Ok(batch.detach().reshape([n, d]))
}

/// V from the energies, c and log q of data (first `n`) and noise (the rest), and the logits.
fn value<T: Float>(
    energies: &Tensor<T>,
    c: &Tensor<T>,
    log_q: &Tensor<T>,
    n: usize,
    nu: f64,
) -> (Tensor<T>, Tensor<T>, Tensor<T>) {
    let m = energies.dim(0) - n;
    let logits = -(&(energies + &log_q.add_scalar(nu.ln())) + c);
    let (g_data, g_noise) = (logits.narrow(0, 0, n), logits.narrow(0, n, m));
    (logistic_loss(&g_data, &g_noise, nu), g_data, g_noise)
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for FlowContrastive<T> {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        let x = self.as_vectors(batch)?;
        let (n, m) = (x.dim(0), self.noise_count(x.dim(0)));
        let nu = self.config.noise_ratio;
        let mut sample_dims = batch.dims().to_vec();

        // The flow: draws with their log-density, and the log-density of the data (graphs to
        // the flow's parameters).
        let (y, log_q_y) = self.flow.sample_with_log_prob(&self.params, m, rng);
        let log_q_x = self.flow.log_prob(&self.params, &x);
        let log_q = Tensor::concat(&[log_q_x.clone(), log_q_y], 0);
        sample_dims[0] = m;
        let y = y.reshape(sample_dims.as_slice());

        // Energy side: one pass over data and detached draws; V with q fixed.
        let both = Tensor::concat(&[batch.detach(), y.detach()], 0);
        let energies = energy.energy(&both);
        let c = self.params.expect(LOG_NORMALIZER);
        let (loss, g_data, g_noise) = value(&energies, c, &log_q.detach(), n, nu);

        // c and the flow: dV/dc from the first term, -dV/dq from the second, whose energies of
        // the draws carry the graph back through y to the flow.
        let (v_c, _, _) = value(&energies.detach(), c, &log_q.detach(), n, nu);
        let e_flow = Tensor::concat(&[energies.narrow(0, 0, n).detach(), energy.energy(&y)], 0);
        let (v_flow, _, _) = value(&e_flow, &c.detach(), &log_q, n, nu);
        let aux_loss = &v_c - &v_flow;

        let e = energies.to_f64s();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        metrics.set("accuracy", accuracy(&g_data, &g_noise));
        metrics.set("log_normalizer", c.item());
        metrics.set("flow_log_likelihood", log_q_x.mean().item());
        metrics.set("energy_data", mean(&e[..n]));
        metrics.set("energy_noise", mean(&e[n..]));
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

    fn state_dict(&self) -> StateDict<T> {
        FlowContrastive::state_dict(self)
    }

    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        FlowContrastive::load_state_dict(self, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn params_hold_c_and_the_flow_and_the_state_checks_the_flow() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let fce = FlowContrastive::<f64>::new(FlowContrastiveConfig::default(), &mut rng).unwrap();
        let names = fce.params().names();
        assert_eq!(names[0], LOG_NORMALIZER);
        assert!(names[1..].iter().all(|n| n.starts_with("flow.")));
        assert_eq!(names.len(), 1 + 8 * 6);

        let config = FlowContrastiveConfig {
            flow: RealNvpConfig {
                n_couplings: 4,
                ..RealNvpConfig::default()
            },
            ..FlowContrastiveConfig::default()
        };
        let mut other = FlowContrastive::<f64>::new(config, &mut rng).unwrap();
        let err = other.load_state_dict(&fce.state_dict()).unwrap_err();
        assert!(err.to_string().contains("n_couplings: 8"), "{err}");
        assert!(other.load_state_dict(&StateDict::new()).is_err());
        let own = other.state_dict();
        other.load_state_dict(&own).unwrap();
    }
}
