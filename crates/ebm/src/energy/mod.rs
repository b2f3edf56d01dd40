//! Energies: functions from a batch `[n, ...]` to energies `[n]`, with E(x) = -log p(x) + const.
//!
//! Two traits:
//! * [`Energy`]: the function alone, enough for samplers and losses. Any closure
//!   `Fn(&Tensor<T>) -> Tensor<T>` is one. The gradient, the score s = -grad_x E and the
//!   Laplacian come from the autodiff engine; an energy with a closed form may override them.
//! * [`EnergyModel`]: a learnable energy that owns its parameters (a
//!   [`ParamStore`]) and describes itself (an [`EnergySpec`]), so that a checkpoint rebuilds it
//!   with no other input.
//!
//! A noise-conditional energy E(x, sigma), for multi-scale score matching and annealed
//! Langevin sampling, implements [`NoiseConditionalEnergy`]; [`AtNoiseLevel`] fixes its sigma
//! and makes it an [`Energy`].

mod checkpoint;
mod conv;
mod gaussian;
mod landscapes;
mod mixture;
mod mlp;
mod noise_conditional;
mod noise_conditional_conv;
mod rbm;
mod spec;

pub use checkpoint::{
    ENERGY_FORMAT_VERSION, LoadedEnergy, LoadedNoiseConditionalEnergy, load_energy,
    load_noise_conditional_energy, read_energy_spec, save_energy, save_noise_conditional_energy,
};
pub use conv::{ConvEnergy, ConvEnergyConfig};
pub use gaussian::{GaussianConfig, GaussianEnergy};
pub use landscapes::{
    BananaConfig, BananaEnergy, DoubleWellConfig, DoubleWellEnergy, RingConfig, RingEnergy,
};
pub use mixture::{GaussianMixtureConfig, GaussianMixtureEnergy};
pub use mlp::{MlpEnergy, MlpEnergyConfig};
pub use noise_conditional::{
    NoiseConditionalMlp, NoiseConditionalMlpConfig, NoiseConditionalModel,
};
pub use noise_conditional_conv::{NoiseConditionalConv, NoiseConditionalConvConfig};
pub use rbm::{
    BernoulliRbm, BernoulliRbmConfig, BlockConditionals, GaussianBernoulliRbm,
    GaussianBernoulliRbmConfig, MAX_ENUMERATED_UNITS, RbmLayer,
};
pub use spec::EnergySpec;

use crate::Error;
use ebm_nn::ParamStore;
use ebm_tensor::autodiff::{GradOptions, grad, hessian_trace, no_grad};
use ebm_tensor::{Float, Tensor};

/// An energy function: a batch `[n, ...]` in, energies `[n]` out.
///
/// It must be differentiable in its input (and, for training, in its parameters): samplers
/// follow -grad_x E, and score-matching losses differentiate through it again.
///
/// Implemented by every closure `Fn(&Tensor<T>) -> Tensor<T> + Send + Sync`:
/// ```
/// use ebm::energy::Energy;
/// use ebm_tensor::Tensor;
///
/// // A standard normal in any dimension: E(x) = |x|^2 / 2, score -x.
/// let normal = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let x = Tensor::from_f64s(&[1.0, -2.0], [1, 2]);
/// assert_eq!(normal.energy(&x).to_f64s(), [2.5]);
/// assert_eq!(normal.score(&x).unwrap().to_f64s(), [-1.0, 2.0]);
/// assert_eq!(normal.laplacian(&x, false).unwrap().to_f64s(), [2.0]);
/// ```
pub trait Energy<T: Float>: Send + Sync {
    /// The energies of a batch, recording the graph as usual.
    ///
    /// # Shapes
    /// `[n, ...] -> [n]`.
    fn energy(&self, x: &Tensor<T>) -> Tensor<T>;

    /// The energies `[n]` and grad_x of their sum (`[n, ...]`, the gradient of each sample's
    /// energy, since samples do not interact).
    ///
    /// With `create_graph`, both results carry their graph (the gradient can be differentiated
    /// again in the parameters and, when `x` itself requires grad, in whatever `x` was computed
    /// from); without it, both are detached constants, as samplers need.
    ///
    /// # Errors
    /// An error of the autodiff engine.
    fn energy_and_grad(
        &self,
        x: &Tensor<T>,
        create_graph: bool,
    ) -> Result<(Tensor<T>, Tensor<T>), Error> {
        let x = differentiable_input(x, create_graph);
        let e = self.energy(&x);
        check_energy_shape(&e, &x);
        let options = GradOptions {
            create_graph,
            ..GradOptions::default()
        };
        let g = grad(&[e.sum()], std::slice::from_ref(&x), None, options)?.remove(0);
        if create_graph {
            Ok((e, g))
        } else {
            Ok((e.detach(), g))
        }
    }

    /// The score s(x) = -grad_x E(x), detached.
    ///
    /// # Errors
    /// An error of the autodiff engine.
    fn score(&self, x: &Tensor<T>) -> Result<Tensor<T>, Error> {
        Ok(-&self.energy_and_grad(x, false)?.1)
    }

    /// The Laplacian of the energy, tr(grad_x^2 E(x)), per sample: `[n, d] -> [n]`.
    ///
    /// Costs d backward passes through the gradient (one per input dimension): meant for small
    /// dimensions, as exact score matching needs. With `create_graph`, the result can be
    /// differentiated again.
    ///
    /// # Errors
    /// An error of the autodiff engine.
    fn laplacian(&self, x: &Tensor<T>, create_graph: bool) -> Result<Tensor<T>, Error> {
        let x = differentiable_input(x, create_graph);
        let e = self.energy(&x);
        check_energy_shape(&e, &x);
        let g = grad(
            &[e.sum()],
            std::slice::from_ref(&x),
            None,
            GradOptions::create_graph(),
        )?
        .remove(0);
        Ok(hessian_trace(&g, &x, create_graph)?)
    }
}

impl<T: Float, F> Energy<T> for F
where
    F: Fn(&Tensor<T>) -> Tensor<T> + Send + Sync,
{
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        self(x)
    }
}

/// The input to differentiate an energy at: `x` itself when the result should carry a graph and
/// `x` is part of one (so that gradients flow back through it), else a fresh leaf.
pub(crate) fn differentiable_input<T: Float>(x: &Tensor<T>, create_graph: bool) -> Tensor<T> {
    if create_graph && x.requires_grad() {
        x.clone()
    } else {
        x.detach().set_requires_grad(true)
    }
}

/// Panics unless `e` is `[n]` for a batch `x` of `n` samples: an energy that returns another
/// shape is a programmer error.
#[track_caller]
pub(crate) fn check_energy_shape<T: Float>(e: &Tensor<T>, x: &Tensor<T>) {
    assert_eq!(
        e.dims(),
        &[x.dim(0)],
        "an energy maps a batch [n, ...] to energies [n]; for a batch of shape {} it returned {}",
        x.shape(),
        e.shape()
    );
}

/// A learnable energy: an [`Energy`] that owns its parameters and describes itself.
///
/// The parameters live in a [`ParamStore`], so that any optimiser of `ebm-nn` updates them
/// and safetensors files save them; [`EnergyModel::spec`] is the architecture, from which
/// [`EnergySpec::build`] makes a fresh model to load those weights into.
pub trait EnergyModel<T: Float>: Energy<T> {
    /// The parameters (and buffers, such as spectral-norm vectors).
    fn params(&self) -> &ParamStore<T>;

    /// The parameters, for an optimiser step or loading weights.
    fn params_mut(&mut self) -> &mut ParamStore<T>;

    /// The architecture and hyper-parameters: everything but the weights.
    fn spec(&self) -> EnergySpec;

    /// Advances the state that training updates once per step (the power iteration of
    /// spectral normalisation), without recording the graph. Does nothing by default.
    fn update_state(&mut self) {}
}

/// An energy conditioned on a noise level, E(x, sigma): the model of multi-scale denoising
/// score matching (Song & Ermon 2019), sampled by annealed Langevin dynamics.
///
/// Implemented by every closure `Fn(&Tensor<T>, &Tensor<T>) -> Tensor<T> + Send + Sync` taking
/// the batch and the per-sample noise levels.
pub trait NoiseConditionalEnergy<T: Float>: Send + Sync {
    /// The energies of a batch at per-sample noise levels.
    ///
    /// # Shapes
    /// `x`: `[n, ...]`, `sigma`: `[n]`; returns `[n]`.
    fn energy_at(&self, x: &Tensor<T>, sigma: &Tensor<T>) -> Tensor<T>;
}

impl<T: Float, F> NoiseConditionalEnergy<T> for F
where
    F: Fn(&Tensor<T>, &Tensor<T>) -> Tensor<T> + Send + Sync,
{
    fn energy_at(&self, x: &Tensor<T>, sigma: &Tensor<T>) -> Tensor<T> {
        self(x, sigma)
    }
}

/// A noise-conditional energy at one fixed noise level: x -> E(x, sigma).
///
/// ```
/// use ebm::energy::{AtNoiseLevel, Energy};
/// use ebm_tensor::Tensor;
///
/// // N(0, (1 + sigma^2) I): a standard normal convolved with noise of scale sigma.
/// let smoothed = |x: &Tensor<f64>, s: &Tensor<f64>| {
///     let var = s.square().add_scalar(1.0);
///     &x.square().sum_axes(&[1], false) / &var.mul_scalar(2.0)
/// };
/// let energy = AtNoiseLevel::new(&smoothed, 1.0);
/// let x = Tensor::from_f64s(&[2.0], [1, 1]);
/// assert_eq!(energy.energy(&x).to_f64s(), [1.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AtNoiseLevel<'a, E: ?Sized> {
    energy: &'a E,
    sigma: f64,
}

impl<'a, E: ?Sized> AtNoiseLevel<'a, E> {
    /// `energy` at noise level `sigma`.
    pub fn new(energy: &'a E, sigma: f64) -> Self {
        AtNoiseLevel { energy, sigma }
    }

    /// The noise level.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

impl<T: Float, E: NoiseConditionalEnergy<T> + ?Sized> Energy<T> for AtNoiseLevel<'_, E> {
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        let sigma = Tensor::full([x.dim(0)], self.sigma);
        self.energy.energy_at(x, &sigma)
    }
}

/// The energies of a batch without recording a graph: for evaluation and figures.
pub fn energies<T: Float, E: Energy<T> + ?Sized>(energy: &E, x: &Tensor<T>) -> Tensor<T> {
    no_grad(|| energy.energy(x))
}
