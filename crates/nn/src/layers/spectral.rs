//! Spectral normalisation of a weight (Miyato et al., 2018).

use crate::{NnError, ParamStore};
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Shape, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Power iterations run once when a spectral norm is attached, so that the first forward pass
/// already divides by a good estimate (PyTorch's `parametrizations.spectral_norm` does 15).
pub const INIT_POWER_ITERATIONS: usize = 15;

/// Settings of spectral normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpectralNormConfig {
    /// Power iterations per training step ([`crate::Module::update_state`]); at least 1.
    /// One is the usual choice: u carries over between steps and the weights move slowly.
    pub n_power_iterations: usize,
    /// Floor of the norms that vectors are divided by (finite, > 0).
    pub eps: f64,
}

impl Default for SpectralNormConfig {
    /// One iteration per step and eps 1e-12, as PyTorch.
    fn default() -> Self {
        SpectralNormConfig {
            n_power_iterations: 1,
            eps: 1e-12,
        }
    }
}

impl SpectralNormConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for zero iterations or an eps that is not finite and > 0.
    pub fn validate(&self) -> Result<(), NnError> {
        if self.n_power_iterations == 0 {
            return Err(NnError::config(
                "spectral norm n_power_iterations",
                0,
                "at least 1",
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(NnError::config(
                "spectral norm eps",
                self.eps,
                "finite and > 0",
            ));
        }
        Ok(())
    }
}

/// A weight divided by an estimate of its largest singular value, so that the layer is about
/// 1-Lipschitz: `W_sn = W / sigma(W)`.
///
/// The weight is viewed as a matrix `W` of shape `[rows, cols]`: axis 0 against the rest
/// (`[out, in]` for a linear weight, `[o, c kh kw]` for a convolution, as PyTorch does; for a
/// convolution this bounds the kernel matrix, not the exact operator norm of the convolution).
/// A unit vector `u` of length `rows` is kept in the store as a buffer and refined by power
/// iteration, without recording the graph:
///
/// ```text
/// v = W^T u / max(|W^T u|, eps)
/// u = W v   / max(|W v|,   eps)          (n_power_iterations times per training step)
/// ```
///
/// The forward pass recomputes `v = W^T u / |W^T u|` from the stored `u` (no graph) and uses
///
/// ```text
/// sigma = u^T W v        differentiable in W, with u and v constants: d sigma / dW = u v^T
/// ```
///
/// which equals |W^T u|, and tends to the top singular value as u converges (geometrically,
/// at the rate (sigma_2 / sigma_1)^2 per iteration).
///
/// Cost: each power iteration is two matrix-vector products, 4 rows cols flops; the forward
/// pass adds two more, the division of W (rows cols), and their backward.
///
/// Reference: T. Miyato, T. Kataoka, M. Koyama, Y. Yoshida, "Spectral Normalization for
/// Generative Adversarial Networks", ICLR 2018.
#[derive(Clone, Debug, PartialEq)]
pub struct SpectralNorm {
    weight: String,
    u: String,
    rows: usize,
    cols: usize,
    config: SpectralNormConfig,
}

impl SpectralNorm {
    /// Attaches spectral normalisation to the weight `weight` of `store`: adds the buffer
    /// `u_name` (a random unit vector refined by [`INIT_POWER_ITERATIONS`] iterations).
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for invalid settings or a weight of rank < 2 or with no
    /// elements; [`NnError::UnknownName`] when the store has no `weight`;
    /// [`NnError::DuplicateName`] when `u_name` is taken.
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        weight: &str,
        u_name: &str,
        config: SpectralNormConfig,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        config.validate()?;
        let dims = store
            .get(weight)
            .ok_or_else(|| store.unknown(weight))?
            .dims()
            .to_vec();
        if dims.len() < 2 || dims.contains(&0) {
            return Err(NnError::config(
                &format!("spectral norm of `{weight}` shape"),
                format!("{dims:?}"),
                "a weight of rank >= 2 with no empty axis",
            ));
        }
        store.check_free(&[u_name])?;

        let rows = dims[0];
        let cols = dims[1..].iter().product();
        let u0 = Tensor::<T>::randn([rows], rng);
        let u0 = no_grad(|| normalise(&u0, config.eps));
        store.insert_buffer(u_name, u0)?;
        let sn = SpectralNorm {
            weight: weight.to_string(),
            u: u_name.to_string(),
            rows,
            cols,
            config,
        };
        sn.power_iterate(store, INIT_POWER_ITERATIONS);
        Ok(sn)
    }

    /// The name of the weight it normalises.
    pub fn weight_name(&self) -> &str {
        &self.weight
    }

    /// The name of the buffer that holds u.
    pub fn u_name(&self) -> &str {
        &self.u
    }

    /// The settings.
    pub fn config(&self) -> &SpectralNormConfig {
        &self.config
    }

    /// Runs `n` power iterations on the current weight and stores the new u. Records no
    /// graph.
    pub fn power_iterate<T: Float>(&self, store: &mut ParamStore<T>, n: usize) {
        let w = self.matrix(store).detach();
        let mut u = store.expect(&self.u).reshape([self.rows, 1]);
        no_grad(|| {
            for _ in 0..n {
                let v = normalise(&w.matmul_t(&u, true, false), self.config.eps);
                u = normalise(&w.matmul(&v), self.config.eps);
            }
        });
        store
            .set(&self.u, u.reshape([self.rows]))
            .expect("u keeps its shape");
    }

    /// `config.n_power_iterations` power iterations: the per-step update.
    pub fn update<T: Float>(&self, store: &mut ParamStore<T>) {
        self.power_iterate(store, self.config.n_power_iterations);
    }

    /// sigma = u^T W v, a scalar, differentiable in W (see the type's docs).
    pub fn sigma<T: Float>(&self, store: &ParamStore<T>) -> Tensor<T> {
        let w = self.matrix(store);
        let u = store.expect(&self.u).reshape([self.rows, 1]);
        let v = no_grad(|| normalise(&w.detach().matmul_t(&u, true, false), self.config.eps));
        u.matmul_t(&w, true, false)
            .matmul(&v)
            .reshape(Shape::scalar())
    }

    /// The normalised weight W / sigma, of the weight's shape, differentiable in W.
    pub fn weight<T: Float>(&self, store: &ParamStore<T>) -> Tensor<T> {
        store.expect(&self.weight) / self.sigma(store)
    }

    fn matrix<T: Float>(&self, store: &ParamStore<T>) -> Tensor<T> {
        store.expect(&self.weight).reshape([self.rows, self.cols])
    }
}

/// `t / max(|t|, eps)`.
fn normalise<T: Float>(t: &Tensor<T>, eps: f64) -> Tensor<T> {
    let norm = t.square().sum().item().sqrt();
    t.mul_scalar(1.0 / norm.max(eps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// The top singular value of a row-major `rows x cols` matrix: power iteration on W^T W
    /// in f64 until the estimate stops changing.
    fn top_singular_value(w: &[f64], rows: usize, cols: usize) -> f64 {
        let mut x = vec![1.0; cols];
        let mut estimate = 0.0;
        for _ in 0..100_000 {
            let wx: Vec<f64> = (0..rows)
                .map(|i| (0..cols).map(|j| w[i * cols + j] * x[j]).sum())
                .collect();
            let y: Vec<f64> = (0..cols)
                .map(|j| (0..rows).map(|i| w[i * cols + j] * wx[i]).sum())
                .collect();
            let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
            x = y.iter().map(|v| v / norm).collect();
            let next = norm.sqrt();
            if (next - estimate).abs() <= 1e-15 * next {
                return next;
            }
            estimate = next;
        }
        panic!("reference power iteration did not converge");
    }

    fn attach<T: Float>(w: Tensor<T>, seed: u64) -> (ParamStore<T>, SpectralNorm) {
        let mut store = ParamStore::new();
        store.insert("w", w).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let config = SpectralNormConfig::default();
        let sn = SpectralNorm::new(&mut store, "w", "w_u", config, &mut rng).unwrap();
        (store, sn)
    }

    #[test]
    fn sigma_converges_to_the_closed_form_for_2x2() {
        // Singular values of [[a, b], [c, d]]: s^2 = (f +- sqrt(f^2 - 4 det^2)) / 2 with
        // f = a^2 + b^2 + c^2 + d^2 (the eigenvalues of W^T W).
        let (a, b, c, d) = (2.0, 1.0, 0.5, 3.0);
        let f: f64 = a * a + b * b + c * c + d * d;
        let det: f64 = a * d - b * c;
        let exact = ((f + (f * f - 4.0 * det * det).sqrt()) / 2.0).sqrt();

        let (mut store, sn) = attach(Tensor::<f64>::from_f64s(&[a, b, c, d], [2, 2]), 0);
        for _ in 0..50 {
            sn.update(&mut store);
        }
        let sigma = sn.sigma(&store).item();
        // (s2/s1)^2 = 0.22 per iteration: after 65 the error is rounding alone.
        assert!((sigma / exact - 1.0).abs() < 1e-13, "{sigma} vs {exact}");
    }

    #[test]
    fn sigma_converges_to_the_top_singular_value_of_a_random_matrix() {
        let mut rng = StdRng::seed_from_u64(7);
        let w = Tensor::<f64>::randn([6, 4, 1, 2], &mut rng);
        let exact = top_singular_value(&w.to_f64s(), 6, 8);
        let (mut store, sn) = attach(w, 1);
        for _ in 0..300 {
            sn.update(&mut store);
        }
        let sigma = sn.sigma(&store).item();
        // 315 iterations of a ratio below 0.9: converged to rounding, 1e-10 is generous.
        assert!((sigma / exact - 1.0).abs() < 1e-10, "{sigma} vs {exact}");

        let normalised = sn.weight(&store).to_f64s();
        let top = top_singular_value(&normalised, 6, 8);
        assert!(
            (top - 1.0).abs() < 1e-10,
            "normalised top singular value {top}"
        );
    }

    #[test]
    fn sigma_converges_in_f32() {
        let mut rng = StdRng::seed_from_u64(8);
        let w = Tensor::<f64>::randn([5, 3], &mut rng);
        let exact = top_singular_value(&w.to_f64s(), 5, 3);
        let (mut store, sn) = attach(w.cast::<f32>(), 2);
        for _ in 0..200 {
            sn.update(&mut store);
        }
        let sigma = sn.sigma(&store).item();
        // f32 rounding of the inputs and of 15-term dot products: about 1e-6 relative.
        assert!((sigma / exact - 1.0).abs() < 1e-5, "{sigma} vs {exact}");
    }

    #[test]
    fn gradient_of_sigma_is_u_v_transposed() {
        // sigma(W) = |W^T u| for the stored u, whose exact derivative is u v^T: the graph,
        // which treats v as a constant, must match central differences of it.
        let mut rng = StdRng::seed_from_u64(9);
        let (mut store, sn) = attach(Tensor::<f64>::randn([3, 4], &mut rng), 3);
        sn.update(&mut store);
        let grads = store.backward(&sn.sigma(&store)).unwrap();
        let analytic = grads.by_name("w").unwrap().to_f64s();

        let h = 1e-6;
        let w0 = store.expect("w").to_f64s();
        for k in 0..w0.len() {
            let mut at = |delta: f64| {
                let mut w = w0.clone();
                w[k] += delta;
                store.set("w", Tensor::from_f64s(&w, [3, 4])).unwrap();
                sn.sigma(&store).item()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            // Central differences err by h^2 |sigma'''| + 1e-16 / h: about 1e-10 here.
            assert!(
                (numeric - analytic[k]).abs() < 1e-8,
                "{k}: {numeric} vs {}",
                analytic[k]
            );
        }
    }

    #[test]
    fn forward_quantities_do_not_move_u() {
        let mut rng = StdRng::seed_from_u64(10);
        let (store, sn) = attach(Tensor::<f32>::randn([3, 3], &mut rng), 4);
        let before = store.expect("w_u").to_vec();
        let _ = sn.weight(&store);
        assert_eq!(store.expect("w_u").to_vec(), before);
        assert!(!store.expect("w_u").requires_grad());
    }

    #[test]
    fn invalid_settings_are_errors() {
        let mut store = ParamStore::<f32>::new();
        store.insert("b", Tensor::ones([3])).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let bad = SpectralNormConfig {
            n_power_iterations: 0,
            eps: 1e-12,
        };
        let err = SpectralNorm::new(&mut store, "b", "u", bad, &mut rng).unwrap_err();
        assert!(matches!(err, NnError::InvalidConfig { .. }));
        let ok = SpectralNormConfig::default();
        let err = SpectralNorm::new(&mut store, "b", "u", ok, &mut rng).unwrap_err();
        assert!(err.to_string().contains("rank >= 2"), "{err}");
        let err = SpectralNorm::new(&mut store, "x", "u", ok, &mut rng).unwrap_err();
        assert!(matches!(err, NnError::UnknownName { .. }));
    }
}
