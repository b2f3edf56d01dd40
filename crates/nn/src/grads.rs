//! Gradients of a loss with respect to every parameter of a store.

use crate::{NnError, ParamStore};
use ebm_tensor::autodiff::{GradOptions, Gradients, grad};
use ebm_tensor::{Float, Tensor};

/// One gradient per parameter of a [`ParamStore`], in the store's order; `None` where the loss
/// does not depend on the parameter (optimisers then leave it and its state alone, as PyTorch
/// does for a parameter whose `.grad` is `None`).
///
/// Holds handles to the gradient tensors, not copies. Built by [`ParamStore::backward`],
/// [`ParamStore::grads_from`] or [`ParamStore::grads_from_vec`].
#[derive(Clone, Debug)]
pub struct ParamGrads<T: Float = f32> {
    pub(crate) names: Vec<String>,
    pub(crate) grads: Vec<Option<Tensor<T>>>,
}

impl<T: Float> ParamGrads<T> {
    /// The gradient of the `i`-th parameter.
    pub fn get(&self, i: usize) -> Option<&Tensor<T>> {
        self.grads.get(i).and_then(Option::as_ref)
    }

    /// The gradient of the parameter called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Tensor<T>> {
        let i = self.names.iter().position(|n| n == name)?;
        self.get(i)
    }

    /// The parameters' names with their gradients, in the store's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&Tensor<T>>)> {
        self.names
            .iter()
            .zip(&self.grads)
            .map(|(n, g)| (n.as_str(), g.as_ref()))
    }

    /// The number of parameters (with or without a gradient).
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The global L2 norm sqrt(sum over all gradients of g^2), accumulated in `f64`.
    pub fn norm(&self) -> f64 {
        self.grads
            .iter()
            .flatten()
            .flat_map(|g| g.data())
            .map(|v| v.f64() * v.f64())
            .sum::<f64>()
            .sqrt()
    }

    /// Multiplies every gradient by `factor` (in place when nothing else holds the gradient,
    /// otherwise into a fresh buffer).
    pub fn scale(&mut self, factor: f64) {
        let factor = T::of(factor);
        for g in self.grads.iter_mut().flatten() {
            if g.has_grad_fn() || g.requires_grad() {
                *g = g.detach();
            }
            g.update_(|d| d.iter_mut().for_each(|v| *v = *v * factor));
        }
    }
}

impl<T: Float> ParamStore<T> {
    /// The gradient of the one-element `loss` with respect to every parameter, by
    /// [`Tensor::backward`] (which releases the graph).
    ///
    /// # Errors
    /// [`NnError::Tensor`] when `loss` has more than one element or its graph was released.
    ///
    /// # Example
    /// ```
    /// use ebm_nn::ParamStore;
    /// use ebm_tensor::Tensor;
    ///
    /// let mut store = ParamStore::<f64>::new();
    /// store.insert("w", Tensor::from_f64s(&[1.0, 2.0], [2])).unwrap();
    /// let loss = store.expect("w").square().sum();
    /// let grads = store.backward(&loss).unwrap();
    /// assert_eq!(grads.by_name("w").unwrap().to_f64s(), vec![2.0, 4.0]);
    /// ```
    pub fn backward(&self, loss: &Tensor<T>) -> Result<ParamGrads<T>, NnError> {
        Ok(self.grads_from(loss.backward()?))
    }

    /// The gradients of `outputs` with respect to every parameter, by
    /// [`ebm_tensor::autodiff::grad`] with `options`. Use this to keep the graph
    /// (`retain_graph`) or to differentiate the gradients again (`create_graph`).
    /// `allow_unused` is forced on, so a parameter the outputs do not depend on gets a zero
    /// gradient (not `None`: `grad` does not tell the two apart), which weight decay and
    /// momentum then act on.
    ///
    /// # Errors
    /// [`NnError::Tensor`] as `grad` reports it.
    pub fn grad(
        &self,
        outputs: &[Tensor<T>],
        options: GradOptions,
    ) -> Result<ParamGrads<T>, NnError> {
        let inputs = self.tensors();
        let found = grad(outputs, &inputs, None, options.allow_unused(true))?;
        Ok(ParamGrads {
            names: self.names().into_iter().map(String::from).collect(),
            grads: found.into_iter().map(Some).collect(),
        })
    }

    /// Takes this store's gradients out of the result of [`Tensor::backward`] (moved, not
    /// copied); parameters without a gradient get `None`.
    pub fn grads_from(&self, mut gradients: Gradients<T>) -> ParamGrads<T> {
        let (names, grads) = self
            .iter()
            .map(|(name, p)| (name.to_string(), gradients.remove(p)))
            .unzip();
        ParamGrads { names, grads }
    }

    /// Wraps gradients returned by [`ebm_tensor::autodiff::grad`] called with
    /// [`ParamStore::tensors`] as inputs (one per parameter, in order).
    ///
    /// # Errors
    /// [`NnError::GradCount`] when the count differs, [`NnError::ShapeMismatch`] when a
    /// gradient's shape is not its parameter's.
    pub fn grads_from_vec(&self, grads: Vec<Tensor<T>>) -> Result<ParamGrads<T>, NnError> {
        if grads.len() != self.len() {
            return Err(NnError::GradCount {
                expected: self.len(),
                found: grads.len(),
            });
        }
        for ((name, p), g) in self.iter().zip(&grads) {
            if p.dims() != g.dims() {
                return Err(NnError::ShapeMismatch {
                    name: name.to_string(),
                    expected: p.dims().to_vec(),
                    found: g.dims().to_vec(),
                });
            }
        }
        Ok(ParamGrads {
            names: self.names().into_iter().map(String::from).collect(),
            grads: grads.into_iter().map(Some).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> ParamStore<f64> {
        let mut s = ParamStore::new();
        s.insert("w", Tensor::from_f64s(&[1.0, -2.0], [2])).unwrap();
        s.insert("unused", Tensor::ones([3])).unwrap();
        s
    }

    #[test]
    fn backward_gives_none_for_unused_parameters() {
        let s = store();
        let loss = s.expect("w").powi(3).sum();
        let g = s.backward(&loss).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.get(0).unwrap().to_f64s(), vec![3.0, 12.0]);
        assert!(g.by_name("unused").is_none());
    }

    #[test]
    fn grads_from_moves_without_copy() {
        let s = store();
        let gradients = s.expect("w").square().sum().backward().unwrap();
        let ptr = gradients.get(s.expect("w")).unwrap().data().as_ptr();
        let g = s.grads_from(gradients);
        assert_eq!(g.get(0).unwrap().data().as_ptr(), ptr);
    }

    #[test]
    fn grad_with_create_graph_keeps_the_graph() {
        let s = store();
        let loss = s.expect("w").powi(3).sum();
        let g = s.grad(&[loss], GradOptions::create_graph()).unwrap();
        assert!(g.get(0).unwrap().requires_grad());
        assert_eq!(g.get(1).unwrap().to_f64s(), vec![0.0; 3]);
    }

    #[test]
    fn grads_from_vec_checks_count_and_shapes() {
        let s = store();
        let err = s.grads_from_vec(vec![Tensor::ones([2])]).unwrap_err();
        assert!(matches!(
            err,
            NnError::GradCount {
                expected: 2,
                found: 1
            }
        ));
        let err = s
            .grads_from_vec(vec![Tensor::ones([2]), Tensor::ones([2])])
            .unwrap_err();
        assert!(matches!(err, NnError::ShapeMismatch { .. }), "{err}");
        let ok = s.grads_from_vec(vec![Tensor::ones([2]), Tensor::ones([3])]);
        assert!(ok.is_ok());
    }

    #[test]
    fn norm_and_scale() {
        let s = store();
        let mut g = s
            .grads_from_vec(vec![
                Tensor::from_f64s(&[3.0, 0.0], [2]),
                Tensor::zeros([3]),
            ])
            .unwrap();
        g.grads[1] = Some(Tensor::from_f64s(&[0.0, 4.0, 0.0], [3]));
        assert_eq!(g.norm(), 5.0);
        g.scale(0.5);
        assert_eq!(g.norm(), 2.5);
    }
}
