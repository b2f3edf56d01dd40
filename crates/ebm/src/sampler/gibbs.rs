//! Block Gibbs sampling of restricted Boltzmann machines.

use crate::Error;
use crate::energy::{BlockConditionals, energies};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

fn default_n_sweeps() -> usize {
    1
}

/// Settings of [`BlockGibbs`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockGibbsConfig {
    /// Sweeps h ~ p(h | v), v ~ p(v | h) per step (the k of CD-k); at least 1.
    #[serde(default = "default_n_sweeps")]
    pub n_sweeps: usize,
}

impl Default for BlockGibbsConfig {
    /// One sweep per step.
    fn default() -> Self {
        BlockGibbsConfig {
            n_sweeps: default_n_sweeps(),
        }
    }
}

/// The state of a batch of block Gibbs chains: one row per chain.
#[derive(Clone, Debug)]
pub struct BlockGibbsState<T: Float> {
    /// The visible units, `[n, V]`.
    pub visible: Tensor<T>,
    /// The hidden units, `[n, H]`: the draw from p(h | v) that produced the current visible
    /// units (or, after [`BlockGibbs::init`], a draw from p(h | v0)).
    pub hidden: Tensor<T>,
}

impl<T: Float> BlockGibbsState<T> {
    /// The number of chains.
    pub fn n_chains(&self) -> usize {
        self.visible.dim(0)
    }
}

/// What one step of [`BlockGibbs`] reports.
#[derive(Clone, Debug)]
pub struct BlockGibbsInfo<T: Float> {
    /// The free energy F(v) of each chain's visible units after the step, `[n]`.
    pub free_energy: Tensor<T>,
}

impl<T: Float> BlockGibbsInfo<T> {
    /// The mean free energy over chains.
    pub fn mean_free_energy(&self) -> f64 {
        self.free_energy.mean().item()
    }

    /// The number of chains whose free energy is not finite (a model with non-finite
    /// parameters).
    pub fn n_non_finite(&self) -> usize {
        self.free_energy
            .to_f64s()
            .iter()
            .filter(|e| !e.is_finite())
            .count()
    }
}

/// Block Gibbs sampling of a model with two conditionally independent blocks of units (an
/// RBM): each sweep draws every hidden unit at once, then every visible unit,
///
/// ```text
/// h ~ p(h | v),    v ~ p(v | h')      (h' the fresh h)
/// ```
///
/// for all chains together as batched tensor operations. Each sweep leaves the joint
/// distribution p(v, h) invariant and reaches every state, so the visible units converge to
/// the model's marginal p(v) = exp(-F(v)) / Z; no step size, no rejection, no discretisation
/// bias. Mixing slows down as the weights grow (the chains stick to modes): that is what
/// persistent chains or annealing address.
///
/// It is not a [`crate::sampler::Sampler`]: that trait works with any [`crate::energy::Energy`]
/// through its gradient, whereas block Gibbs needs the model's conditionals, which
/// [`BlockConditionals`] provides (implemented by [`crate::energy::BernoulliRbm`] and
/// [`crate::energy::GaussianBernoulliRbm`]). The split is the same: [`BlockGibbs::init`] and
/// [`BlockGibbs::step`], with the randomness passed in.
///
/// Cost per step: per sweep, two `[n, V] x [V, H]` products and n (V + H) random numbers;
/// then one product for the free energy in the info record.
///
/// Geman & Geman, "Stochastic relaxation, Gibbs distributions, and the Bayesian restoration of
/// images", IEEE PAMI 1984; for RBMs and contrastive divergence, Hinton, "Training products
/// of experts by minimizing contrastive divergence", Neural Computation 2002.
///
/// # Example
/// ```
/// use ebm::energy::{BernoulliRbm, BernoulliRbmConfig};
/// use ebm::sampler::{BlockGibbs, BlockGibbsConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let rbm = BernoulliRbm::<f64>::new(BernoulliRbmConfig::new(6, 4), &mut rng).unwrap();
/// let gibbs = BlockGibbs::new(BlockGibbsConfig::default()).unwrap();
/// let state = gibbs.init(&mut rng, Tensor::zeros([100, 6]), &rbm).unwrap();
/// let (state, infos) = gibbs.run(&mut rng, state, &rbm, 10);
/// assert_eq!((state.visible.dims(), state.hidden.dims()), (&[100, 6][..], &[100, 4][..]));
/// assert_eq!(infos[9].n_non_finite(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct BlockGibbs {
    config: BlockGibbsConfig,
}

impl BlockGibbs {
    /// A sampler with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero sweeps per step.
    pub fn new(config: BlockGibbsConfig) -> Result<Self, Error> {
        if config.n_sweeps == 0 {
            return Err(Error::config(
                "BlockGibbs n_sweeps",
                config.n_sweeps,
                "at least 1 sweep per step (1 is the usual choice)",
            ));
        }
        Ok(BlockGibbs { config })
    }

    /// The settings.
    pub fn config(&self) -> &BlockGibbsConfig {
        &self.config
    }

    /// Chains started at the visible units `visible` (`[n, V]`, one row per chain), with
    /// hidden units drawn from p(h | v0).
    ///
    /// For a binary model, `visible` may also hold probabilities in [0, 1] (a mean-field
    /// start): they only enter p(h | v0), and the first sweep draws binary visible units.
    ///
    /// # Errors
    /// [`Error::Shape`] unless `visible` is `[n, V]` with n >= 1 and V the model's visible
    /// units.
    pub fn init<T, M, R>(
        &self,
        rng: &mut R,
        visible: Tensor<T>,
        model: &M,
    ) -> Result<BlockGibbsState<T>, Error>
    where
        T: Float,
        M: BlockConditionals<T> + ?Sized,
        R: Rng + ?Sized,
    {
        let v = model.n_visible();
        if visible.rank() != 2 || visible.dim(0) == 0 || visible.dim(1) != v {
            return Err(Error::Shape {
                what: "starting block Gibbs chains".into(),
                expected: format!("[n, {v}] with n >= 1 chains and the model's {v} visible units"),
                found: visible.dims().to_vec(),
            });
        }
        let visible = visible.detach();
        let hidden = model.sample_hidden(&visible, rng);
        Ok(BlockGibbsState { visible, hidden })
    }

    /// One step of every chain: `n_sweeps` sweeps h ~ p(h | v), v ~ p(v | h).
    ///
    /// # Panics
    /// When the state does not fit the model (a state made for another model).
    pub fn step<T, M, R>(
        &self,
        rng: &mut R,
        state: BlockGibbsState<T>,
        model: &M,
    ) -> (BlockGibbsState<T>, BlockGibbsInfo<T>)
    where
        T: Float,
        M: BlockConditionals<T> + ?Sized,
        R: Rng + ?Sized,
    {
        let BlockGibbsState {
            mut visible,
            mut hidden,
        } = state;
        for _ in 0..self.config.n_sweeps {
            hidden = model.sample_hidden(&visible, rng);
            visible = model.sample_visible(&hidden, rng);
        }

        let info = BlockGibbsInfo {
            free_energy: energies(model, &visible),
        };
        (BlockGibbsState { visible, hidden }, info)
    }

    /// `n_steps` steps from `state`: the final state and the info of every step.
    ///
    /// # Panics
    /// As [`BlockGibbs::step`].
    pub fn run<T, M, R>(
        &self,
        rng: &mut R,
        mut state: BlockGibbsState<T>,
        model: &M,
        n_steps: usize,
    ) -> (BlockGibbsState<T>, Vec<BlockGibbsInfo<T>>)
    where
        T: Float,
        M: BlockConditionals<T> + ?Sized,
        R: Rng + ?Sized,
    {
        let mut infos = Vec::with_capacity(n_steps);
        for _ in 0..n_steps {
            let (next, info) = self.step(rng, state, model);
            state = next;
            infos.push(info);
        }
        (state, infos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sweeps_are_rejected() {
        let err = BlockGibbs::new(BlockGibbsConfig { n_sweeps: 0 }).unwrap_err();
        assert!(err.to_string().contains("n_sweeps"), "{err}");
    }

    #[test]
    fn config_defaults_to_one_sweep() {
        let config: BlockGibbsConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, BlockGibbsConfig::default());
        assert_eq!(config.n_sweeps, 1);
    }
}
