//! Clipping of the global gradient norm.

use crate::{NnError, ParamGrads};
use ebm_tensor::Float;

/// Rescales all gradients together so that their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_`:
///
/// ```text
/// norm = sqrt(sum over every gradient element of g^2)       (accumulated in f64)
/// g    = g min(1, max_norm / (norm + 1e-6))
/// ```
///
/// # Returns
/// The norm before clipping (for logging).
///
/// # Errors
/// [`NnError::InvalidConfig`] when `max_norm` is not finite and > 0;
/// [`NnError::NonFiniteGradNorm`], naming the parameters with non-finite gradients, when the
/// norm is NaN or infinite. The gradients are left as they were then: a non-finite norm is
/// reported, never clipped into finite-looking numbers.
///
/// # Example
/// ```
/// use ebm_nn::{ParamStore, clip_grad_norm};
/// use ebm_tensor::Tensor;
///
/// let mut store = ParamStore::<f64>::new();
/// store.insert("w", Tensor::from_f64s(&[3.0, 4.0], [2])).unwrap();
/// let mut grads = store.backward(&store.expect("w").square().sum().mul_scalar(0.5)).unwrap();
/// let norm = clip_grad_norm(&mut grads, 1.0).unwrap();
/// assert_eq!(norm, 5.0);
/// assert!((grads.norm() - 1.0).abs() < 1e-6);
/// ```
pub fn clip_grad_norm<T: Float>(grads: &mut ParamGrads<T>, max_norm: f64) -> Result<f64, NnError> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(NnError::config(
            "clip_grad_norm max_norm",
            max_norm,
            "finite and > 0",
        ));
    }
    let norm = grads.norm();
    if !norm.is_finite() {
        let params = grads
            .iter()
            .filter(|(_, g)| g.is_some_and(|g| g.data().iter().any(|v| !v.is_finite())))
            .map(|(name, _)| name.to_string())
            .collect();
        return Err(NnError::NonFiniteGradNorm { norm, params });
    }
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        grads.scale(factor);
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamStore;
    use ebm_tensor::Tensor;

    fn grads(a: &[f64], b: &[f64]) -> ParamGrads<f64> {
        let mut s = ParamStore::<f64>::new();
        s.insert("a", Tensor::zeros([a.len()])).unwrap();
        s.insert("b", Tensor::zeros([b.len()])).unwrap();
        let g = vec![
            Tensor::from_f64s(a, [a.len()]),
            Tensor::from_f64s(b, [b.len()]),
        ];
        s.grads_from_vec(g).unwrap()
    }

    #[test]
    fn clips_to_max_norm_across_parameters() {
        let mut g = grads(&[3.0], &[0.0, 4.0]);
        let norm = clip_grad_norm(&mut g, 2.5).unwrap();
        assert_eq!(norm, 5.0);
        let factor = 2.5 / (5.0 + 1e-6);
        assert_eq!(g.by_name("a").unwrap().to_f64s(), vec![3.0 * factor]);
        assert_eq!(g.by_name("b").unwrap().to_f64s(), vec![0.0, 4.0 * factor]);
    }

    #[test]
    fn leaves_small_gradients_unchanged() {
        let mut g = grads(&[0.3], &[0.4]);
        let norm = clip_grad_norm(&mut g, 1.0).unwrap();
        // 0.3 and 0.4 are not exact in binary: the norm is 0.5 to a few ulps (1.1e-16).
        assert!((norm - 0.5).abs() < 1e-15);
        assert_eq!(g.by_name("a").unwrap().to_f64s(), vec![0.3]);
    }

    #[test]
    fn reports_non_finite_norms_with_the_culprits() {
        let mut g = grads(&[1.0], &[f64::NAN, 1.0]);
        let err = clip_grad_norm(&mut g, 1.0).unwrap_err();
        match &err {
            NnError::NonFiniteGradNorm { norm, params } => {
                assert!(norm.is_nan());
                assert_eq!(params, &vec!["b".to_string()]);
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(g.by_name("a").unwrap().to_f64s(), vec![1.0]);
        let mut g = grads(&[f64::INFINITY], &[1.0]);
        assert!(matches!(
            clip_grad_norm(&mut g, 1.0),
            Err(NnError::NonFiniteGradNorm { .. })
        ));
    }

    #[test]
    fn rejects_invalid_max_norm() {
        let mut g = grads(&[1.0], &[1.0]);
        for bad in [0.0, -1.0, f64::INFINITY] {
            assert!(matches!(
                clip_grad_norm(&mut g, bad),
                Err(NnError::InvalidConfig { .. })
            ));
        }
    }
}
