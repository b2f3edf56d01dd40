//! The replay buffer of persistent chains (Du & Mordatch 2019).

use crate::Error;
use crate::error::check_positive;
use ebm_nn::StateDict;
use ebm_tensor::{Float, Tensor};
use rand::seq::index;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// The distribution that fills a [`ReplayBuffer`] and restarts its chains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RestartDistribution {
    /// Every component uniform in `[low, high)` (images: the data range).
    Uniform {
        /// The lower bound.
        low: f64,
        /// The upper bound, above `low`.
        high: f64,
    },
    /// Every component normal with this mean and standard deviation.
    Gaussian {
        /// The mean.
        mean: f64,
        /// The standard deviation, > 0.
        std: f64,
    },
}

impl RestartDistribution {
    /// `Ok(())` for finite parameters with `low < high` or `std > 0`.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        match *self {
            RestartDistribution::Uniform { low, high } => {
                if low.is_finite() && high.is_finite() && low < high {
                    Ok(())
                } else {
                    Err(Error::config(
                        "replay buffer restart Uniform { low, high }",
                        format!("{{ low: {low}, high: {high} }}"),
                        "finite bounds with low < high, such as { low: -1.0, high: 1.0 }",
                    ))
                }
            }
            RestartDistribution::Gaussian { mean, std } => {
                if !mean.is_finite() {
                    return Err(Error::config(
                        "replay buffer restart Gaussian mean",
                        mean,
                        "a finite number",
                    ));
                }
                check_positive("replay buffer restart Gaussian std", std)
            }
        }
    }

    /// Draws of this distribution, of the given shape.
    pub(crate) fn draw<T: Float, R: Rng + ?Sized>(
        &self,
        shape: Vec<usize>,
        rng: &mut R,
    ) -> Tensor<T> {
        match *self {
            RestartDistribution::Uniform { low, high } => {
                Tensor::rand_uniform(shape, low, high, rng)
            }
            RestartDistribution::Gaussian { mean, std } => {
                Tensor::randn(shape, rng).affine(std, mean)
            }
        }
    }
}

fn default_restart_probability() -> f64 {
    0.05
}

/// Settings of a [`ReplayBuffer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBufferConfig {
    /// The number of stored samples (Du & Mordatch use 10,000).
    pub capacity: usize,
    /// The probability that a drawn sample is replaced by a fresh draw of `restart` (default
    /// 0.05, as Du & Mordatch).
    #[serde(default = "default_restart_probability")]
    pub restart_probability: f64,
    /// Where fresh samples come from.
    pub restart: RestartDistribution,
}

impl ReplayBufferConfig {
    /// `capacity` samples, restarted with probability 0.05 from `restart`.
    pub fn new(capacity: usize, restart: RestartDistribution) -> Self {
        ReplayBufferConfig {
            capacity,
            restart_probability: default_restart_probability(),
            restart,
        }
    }

    /// `Ok(())` when every setting is in range.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.capacity == 0 {
            return Err(Error::config(
                "replay buffer capacity",
                0,
                "at least 1 (Du & Mordatch use 10000)",
            ));
        }
        let p = self.restart_probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::config(
                "replay buffer restart_probability",
                p,
                "a probability in [0, 1], such as 0.05",
            ));
        }
        self.restart.validate()
    }
}

/// A fixed-size buffer of samples that persistent chains start from and are written back to:
/// the replay buffer of Du & Mordatch, "Implicit Generation and Modeling with Energy-Based
/// Models", NeurIPS 2019.
///
/// # Semantics
/// * The buffer always holds `capacity` samples: [`ReplayBuffer::new`] fills it with draws of
///   the restart distribution (there is no warm-up phase where it grows).
/// * [`ReplayBuffer::sample`] picks `n` distinct entries uniformly at random (without
///   replacement within the batch) and returns copies of them, each replaced by a fresh
///   restart draw with probability `restart_probability`, together with their indices.
/// * After running the chains, [`ReplayBuffer::push`] writes the batch back in place at those
///   indices, so every sampled entry (restarted or not) is overwritten by its chain's end.
///
/// This is persistent contrastive divergence with restarts: each entry is one chain that
/// advances whenever it is drawn.
///
/// # Cost
/// Sampling copies `n` rows and draws the restarts; writing back copies `n` rows in place
/// (copy on write: one full copy when the buffer's tensor is shared, as after
/// [`ReplayBuffer::buffer`] handed out a handle that is still alive).
///
/// # Example
/// ```
/// use ebm::sampler::{ReplayBuffer, ReplayBufferConfig, RestartDistribution};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let restart = RestartDistribution::Uniform { low: -1.0, high: 1.0 };
/// let mut buffer = ReplayBuffer::<f32>::new(ReplayBufferConfig::new(1000, restart), &[2], &mut rng)?;
/// let (x, indices) = buffer.sample(64, &mut rng)?;
/// assert_eq!(x.dims(), &[64, 2]);
/// // ... run a sampler from x ...
/// buffer.push(&indices, &x)?;
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ReplayBuffer<T: Float> {
    config: ReplayBufferConfig,
    sample_shape: Vec<usize>,
    buffer: Tensor<T>,
}

/// Keys of the saved state.
const KEY_BUFFER: &str = "buffer";
const KEY_CONFIG: &str = "config";
const KEY_SHAPE: &str = "sample_shape";

impl<T: Float> ReplayBuffer<T> {
    /// A buffer of `config.capacity` samples of shape `sample_shape` (such as `[2]` or
    /// `[3, 32, 32]`), filled from the restart distribution.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a capacity of 0, a restart probability outside [0, 1], a
    /// restart distribution with bad parameters, or a sample shape with a zero dimension.
    pub fn new<R: Rng + ?Sized>(
        config: ReplayBufferConfig,
        sample_shape: &[usize],
        rng: &mut R,
    ) -> Result<Self, Error> {
        config.validate()?;
        check_sample_shape(sample_shape)?;
        let buffer = config
            .restart
            .draw(full_shape(config.capacity, sample_shape), rng);
        Ok(ReplayBuffer {
            config,
            sample_shape: sample_shape.to_vec(),
            buffer,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ReplayBufferConfig {
        &self.config
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// The stored samples, `[capacity, ...]`.
    pub fn buffer(&self) -> &Tensor<T> {
        &self.buffer
    }

    /// The number of stored samples: always the capacity (the buffer is created full).
    pub fn len(&self) -> usize {
        self.buffer.dim(0)
    }

    /// Always false: the buffer is created full.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The number of samples the buffer holds.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// `n` distinct entries drawn uniformly at random, each replaced by a fresh restart draw
    /// with probability `restart_probability`.
    ///
    /// Random numbers are drawn in a fixed order (the indices, then one uniform per entry for
    /// the restart decisions, then the restart draws), so the batch is reproducible from the
    /// generator's state.
    ///
    /// # Shapes
    /// Returns `[n, ...sample_shape]` and `n` indices into the buffer, for [`Self::push`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `n` is 0 or above the capacity.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        n: usize,
        rng: &mut R,
    ) -> Result<(Tensor<T>, Vec<usize>), Error> {
        if n == 0 || n > self.capacity() {
            return Err(Error::config(
                "replay buffer batch size",
                n,
                format!(
                    "1 to {} (the capacity; entries are drawn without replacement)",
                    self.capacity()
                ),
            ));
        }
        let indices = index::sample(rng, self.capacity(), n).into_vec();
        let stored = self.buffer.index_select(0, &indices);

        // Which entries restart, then their fresh draws placed at those rows.
        let p = self.config.restart_probability;
        let restarted: Vec<usize> = (0..n).filter(|_| rng.random::<f64>() < p).collect();
        if restarted.is_empty() {
            return Ok((stored, indices));
        }
        let shape = full_shape(restarted.len(), &self.sample_shape);
        let fresh: Tensor<T> = self.config.restart.draw(shape, rng);
        let placed = fresh.index_add(0, &restarted, n);
        let mut mask = vec![0.0; n];
        restarted.iter().for_each(|&i| mask[i] = 1.0);
        let mut mask_shape = vec![1; self.sample_shape.len() + 1];
        mask_shape[0] = n;
        let mask = Tensor::from_f64s(&mask, mask_shape);
        Ok((placed.where_mask(&mask, &stored), indices))
    }

    /// Writes `samples` back into the buffer at `indices` (as returned by [`Self::sample`]).
    ///
    /// # Errors
    /// [`Error::Shape`] when `samples` is not `[indices.len(), ...sample_shape]`.
    ///
    /// # Panics
    /// When an index is not below the capacity or appears twice.
    #[track_caller]
    pub fn push(&mut self, indices: &[usize], samples: &Tensor<T>) -> Result<(), Error> {
        let expected = full_shape(indices.len(), &self.sample_shape);
        if samples.dims() != expected.as_slice() {
            return Err(Error::Shape {
                what: "writing samples back to the replay buffer".into(),
                expected: format!("{expected:?} (one sample per index)"),
                found: samples.dims().to_vec(),
            });
        }
        // Row copies in place (copy on write when the buffer's tensor is shared); the indices
        // are checked there.
        self.buffer.index_copy_(indices, samples);
        Ok(())
    }

    /// The saved form: the tensor `buffer` (`[capacity, ...]`) and the metadata `config`
    /// (the [`ReplayBufferConfig`] as JSON) and `sample_shape` (a JSON array). Save it next
    /// to the weights (under a prefix, with [`StateDict::merge_prefixed`]) to resume
    /// training with the same chains.
    pub fn state_dict(&self) -> StateDict<T> {
        let mut state = StateDict::new();
        state
            .tensors
            .insert(KEY_BUFFER.into(), self.buffer.detach());
        state.metadata.insert(
            KEY_CONFIG.into(),
            serde_json::to_string(&self.config).expect("the config serialises"),
        );
        state.metadata.insert(
            KEY_SHAPE.into(),
            serde_json::to_string(&self.sample_shape).expect("a shape serialises"),
        );
        state
    }

    /// The buffer saved by [`Self::state_dict`], bit for bit.
    ///
    /// # Errors
    /// [`Error::Restore`] naming the problem: a missing `buffer` tensor or `config` /
    /// `sample_shape` entry, unreadable JSON, a config out of range, or a buffer whose shape
    /// is not `[capacity, ...sample_shape]`.
    pub fn from_state_dict(state: &StateDict<T>) -> Result<Self, Error> {
        let restore = |reason: String| Error::Restore {
            what: "replay buffer".into(),
            reason,
        };
        let text = |key: &str| {
            state.metadata.get(key).ok_or_else(|| {
                restore(format!(
                    "the metadata has no `{key}` entry; save the buffer with `ReplayBuffer::state_dict` (and read it back with `StateDict::prefixed` when it was saved under a prefix)"
                ))
            })
        };
        let config: ReplayBufferConfig = serde_json::from_str(text(KEY_CONFIG)?).map_err(|e| {
            restore(format!(
                "the `{KEY_CONFIG}` entry is not a replay buffer config: {e}"
            ))
        })?;
        config
            .validate()
            .map_err(|e| restore(format!("the saved config is out of range: {e}")))?;
        let sample_shape: Vec<usize> = serde_json::from_str(text(KEY_SHAPE)?).map_err(|e| {
            restore(format!(
                "the `{KEY_SHAPE}` entry is not a JSON array of sizes: {e}"
            ))
        })?;
        check_sample_shape(&sample_shape)
            .map_err(|e| restore(format!("the saved sample shape is invalid: {e}")))?;

        let buffer = state.tensors.get(KEY_BUFFER).ok_or_else(|| {
            restore(format!(
                "the state has no `{KEY_BUFFER}` tensor (it holds {:?})",
                state.tensors.keys().collect::<Vec<_>>()
            ))
        })?;
        let expected = full_shape(config.capacity, &sample_shape);
        if buffer.dims() != expected.as_slice() {
            return Err(restore(format!(
                "the `{KEY_BUFFER}` tensor has shape {:?}, but the saved capacity and sample shape make {expected:?}",
                buffer.dims()
            )));
        }
        Ok(ReplayBuffer {
            config,
            sample_shape,
            buffer: buffer.detach(),
        })
    }
}

/// `[n, ...sample_shape]`.
fn full_shape(n: usize, sample_shape: &[usize]) -> Vec<usize> {
    std::iter::once(n)
        .chain(sample_shape.iter().copied())
        .collect()
}

fn check_sample_shape(sample_shape: &[usize]) -> Result<(), Error> {
    if sample_shape.contains(&0) {
        return Err(Error::config(
            "replay buffer sample_shape",
            format!("{sample_shape:?}"),
            "sizes of at least 1, such as [2] or [3, 32, 32]",
        ));
    }
    Ok(())
}
