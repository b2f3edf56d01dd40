//! The affine coupling layer of Real NVP: half of the coordinates pass through unchanged and
//! set a shift and a log-scale for the other half.

use crate::{Activation, Mlp, MlpConfig, Module, NnError, ParamStore};
use ebm_tensor::{Float, Tensor};
use rand::Rng;

/// Settings of one [`AffineCoupling`].
#[derive(Clone, Debug, PartialEq)]
pub struct AffineCouplingConfig {
    /// The dimension d of the samples.
    pub dim: usize,
    /// The coordinates that pass through unchanged and condition the others (distinct, below
    /// `dim`, at least one, not all).
    pub conditioning: Vec<usize>,
    /// Hidden widths of the conditioner network (empty: an affine conditioner).
    pub hidden: Vec<usize>,
    /// The nonlinearity of the conditioner (a smooth one keeps log q twice differentiable).
    pub activation: Activation,
    /// B, the bound of the log-scale: s = B tanh(s_raw / B) lies in (-B, B).
    pub log_scale_bound: f64,
}

/// An affine coupling layer (Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real
/// NVP", ICLR 2017).
///
/// With C the conditioning coordinates and T the others, it maps x to y by
///
/// ```text
/// y_C = x_C
/// y_T = x_T * exp(s(x_C)) + t(x_C),     s = B tanh(s_raw / B)
/// log |det dy/dx| = sum_T s(x_C)
/// ```
///
/// where (s_raw, t) is the output of a conditioner MLP on x_C. The Jacobian is triangular
/// (after ordering C before T), so its log-determinant is exact and costs a sum; the inverse is
/// x_T = (y_T - t(y_C)) * exp(-s(y_C)), as cheap as the forward map. The tanh bound keeps a
/// single layer from scaling by more than e^B either way, which keeps early training stable.
///
/// The conditioner's last layer starts at zero, so a new layer is the identity.
///
/// Parameters, for a layer called `name`: those of the [`Mlp`] `name` with widths
/// `[|C|, hidden..., 2 |T|]` (the first |T| outputs are s_raw, the last |T| are t).
///
/// # Shapes
/// `[n, d] -> ([n, d], [n])`.
#[derive(Clone, Debug, PartialEq)]
pub struct AffineCoupling {
    conditioner: Mlp,
    conditioning: Vec<usize>,
    transformed: Vec<usize>,
    /// Where each coordinate sits in `[x_C, x_T]`: undoes the split.
    merge: Vec<usize>,
    dim: usize,
    log_scale_bound: f64,
}

impl AffineCoupling {
    /// A coupling layer whose conditioner is added to `store` under `name.` (all its tensors
    /// or, on error, none), starting at the identity map.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for conditioning coordinates that are empty, cover every
    /// coordinate, repeat or reach `dim`, a zero hidden width, or a bound that is not finite
    /// and positive; the errors of [`Mlp::from_config`] for the names.
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        config: &AffineCouplingConfig,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        let dim = config.dim;
        let mut seen = vec![false; dim];
        for &i in &config.conditioning {
            if i >= dim || seen[i] {
                return Err(NnError::config(
                    &format!("coupling `{name}` conditioning"),
                    format!("{:?}", config.conditioning),
                    &format!("distinct coordinates below the dimension {dim}"),
                ));
            }
            seen[i] = true;
        }
        if config.conditioning.is_empty() || config.conditioning.len() == dim {
            return Err(NnError::config(
                &format!("coupling `{name}` conditioning"),
                format!("{:?}", config.conditioning),
                &format!("between 1 and {} of the {dim} coordinates", dim.max(1) - 1),
            ));
        }
        let bound = config.log_scale_bound;
        if !(bound.is_finite() && bound > 0.0) {
            return Err(NnError::config(
                &format!("coupling `{name}` log_scale_bound"),
                bound,
                "a finite number > 0, such as 2",
            ));
        }
        let transformed: Vec<usize> = (0..dim).filter(|&i| !seen[i]).collect();

        // The conditioner, its last layer zeroed so that s = t = 0: the identity map.
        let mut widths = vec![config.conditioning.len()];
        widths.extend(&config.hidden);
        widths.push(2 * transformed.len());
        let mlp_config = MlpConfig::new(&widths, config.activation);
        let mut scratch = ParamStore::new();
        let conditioner = Mlp::from_config(&mut scratch, name, &mlp_config, rng)?;
        let last = widths.len() - 2;
        for part in ["weight", "bias"] {
            let key = format!("{name}.{last}.{part}");
            let zeros = Tensor::zeros_like(scratch.expect(&key));
            scratch.set(&key, zeros)?;
        }
        store.absorb(scratch)?;

        // x = [x_C, x_T] gathered by `merge`.
        let mut merge = vec![0; dim];
        for (k, &i) in config.conditioning.iter().chain(&transformed).enumerate() {
            merge[i] = k;
        }
        Ok(AffineCoupling {
            conditioner,
            conditioning: config.conditioning.clone(),
            transformed,
            merge,
            dim,
            log_scale_bound: bound,
        })
    }

    /// The conditioning coordinates C.
    pub fn conditioning(&self) -> &[usize] {
        &self.conditioning
    }

    /// The transformed coordinates T.
    pub fn transformed(&self) -> &[usize] {
        &self.transformed
    }

    /// The conditioner network.
    pub fn conditioner(&self) -> &Mlp {
        &self.conditioner
    }

    /// The bounded log-scale s and the shift t for the conditioning part `[n, |C|]`, each
    /// `[n, |T|]`.
    pub fn scale_and_shift<T: Float>(
        &self,
        store: &ParamStore<T>,
        x_cond: &Tensor<T>,
    ) -> (Tensor<T>, Tensor<T>) {
        let h = self.conditioner.forward(store, x_cond);
        let k = self.transformed.len();
        let bound = self.log_scale_bound;
        let s = h
            .narrow(1, 0, k)
            .mul_scalar(1.0 / bound)
            .tanh()
            .mul_scalar(bound);
        (s, h.narrow(1, k, k))
    }

    /// y = f(x) and log |det df/dx| per sample.
    ///
    /// # Shapes
    /// `[n, d] -> ([n, d], [n])`.
    ///
    /// # Panics
    /// When `x` is not `[n, d]`.
    #[track_caller]
    pub fn forward<T: Float>(
        &self,
        store: &ParamStore<T>,
        x: &Tensor<T>,
    ) -> (Tensor<T>, Tensor<T>) {
        self.check_input(x);
        let x_cond = x.index_select(1, &self.conditioning);
        let x_trans = x.index_select(1, &self.transformed);
        let (s, t) = self.scale_and_shift(store, &x_cond);
        let y_trans = &(&x_trans * &s.exp()) + &t;
        let y = Tensor::concat(&[x_cond, y_trans], 1).index_select(1, &self.merge);
        (y, s.sum_axes(&[1], false))
    }

    /// x = f^-1(y) and log |det df^-1/dy| per sample (minus that of the forward map at x).
    ///
    /// # Shapes
    /// `[n, d] -> ([n, d], [n])`.
    ///
    /// # Panics
    /// When `y` is not `[n, d]`.
    #[track_caller]
    pub fn inverse<T: Float>(
        &self,
        store: &ParamStore<T>,
        y: &Tensor<T>,
    ) -> (Tensor<T>, Tensor<T>) {
        self.check_input(y);
        let y_cond = y.index_select(1, &self.conditioning);
        let y_trans = y.index_select(1, &self.transformed);
        let (s, t) = self.scale_and_shift(store, &y_cond);
        let x_trans = &(&y_trans - &t) * &(-&s).exp();
        let x = Tensor::concat(&[y_cond, x_trans], 1).index_select(1, &self.merge);
        (x, -s.sum_axes(&[1], false))
    }

    #[track_caller]
    fn check_input<T: Float>(&self, x: &Tensor<T>) {
        assert!(
            x.rank() == 2 && x.dim(1) == self.dim,
            "coupling layer: expected a batch [n, {}], got {:?}",
            self.dim,
            x.dims()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn config(dim: usize, conditioning: &[usize]) -> AffineCouplingConfig {
        AffineCouplingConfig {
            dim,
            conditioning: conditioning.to_vec(),
            hidden: vec![8],
            activation: Activation::Silu,
            log_scale_bound: 2.0,
        }
    }

    #[test]
    fn a_new_layer_is_the_identity() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut store = ParamStore::<f64>::new();
        let layer = AffineCoupling::new(&mut store, "c", &config(3, &[0, 2]), &mut rng).unwrap();
        assert_eq!(layer.transformed(), [1]);
        let x = Tensor::<f64>::randn([4, 3], &mut rng);
        let (y, log_det) = layer.forward(&store, &x);
        assert_eq!(y.to_f64s(), x.to_f64s());
        assert_eq!(log_det.to_f64s(), [0.0; 4]);
        assert_eq!(
            store.names(),
            ["c.0.weight", "c.0.bias", "c.1.weight", "c.1.bias"]
        );
        assert_eq!(store.expect("c.1.weight").dims(), &[2, 8]);
    }

    #[test]
    fn conditioning_coordinates_pass_through_and_the_map_inverts() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut store = ParamStore::<f64>::new();
        let layer = AffineCoupling::new(&mut store, "c", &config(4, &[1, 2]), &mut rng).unwrap();
        let w = Tensor::<f64>::randn([4, 8], &mut rng);
        store.set("c.1.weight", w).unwrap();
        let x = Tensor::<f64>::randn([5, 4], &mut rng);
        let (y, log_det) = layer.forward(&store, &x);
        let (back, inv_log_det) = layer.inverse(&store, &y);
        let (xs, ys) = (x.to_f64s(), y.to_f64s());
        for row in 0..5 {
            assert_eq!(xs[row * 4 + 1], ys[row * 4 + 1]);
            assert_eq!(xs[row * 4 + 2], ys[row * 4 + 2]);
        }
        // One affine map and its inverse on values of order 1: rounding only.
        for (a, b) in back.to_f64s().iter().zip(&xs) {
            assert!((a - b).abs() < 1e-13, "{a} vs {b}");
        }
        for (a, b) in log_det.to_f64s().iter().zip(inv_log_det.to_f64s()) {
            assert!(a.abs() > 1e-3 && (a + b).abs() < 1e-13, "{a} vs {b}");
            assert!(a.abs() < 2.0 * 2.0, "two coordinates, each |s| < 2");
        }
    }

    #[test]
    fn invalid_settings_are_rejected_and_leave_the_store_unchanged() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut store = ParamStore::<f64>::new();
        for bad in [&[][..], &[0, 1], &[0, 0], &[2]] {
            let err = AffineCoupling::new(&mut store, "c", &config(2, bad), &mut rng).unwrap_err();
            assert!(err.to_string().contains("conditioning"), "{err}");
        }
        let mut wide = config(2, &[0]);
        wide.log_scale_bound = f64::INFINITY;
        let err = AffineCoupling::new(&mut store, "c", &wide, &mut rng).unwrap_err();
        assert!(err.to_string().contains("log_scale_bound"), "{err}");
        assert!(store.is_empty());
    }
}
