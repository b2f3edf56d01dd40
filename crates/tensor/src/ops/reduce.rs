//! Reductions: sums, means, maxima, log-sum-exp and log-softmax.

use crate::kernels::elementwise::zip;
use crate::kernels::reduce::max_axis;
use crate::{Float, Shape, Tensor};

impl<T: Float> Tensor<T> {
    /// The sum of all elements, as a scalar tensor.
    pub fn sum(&self) -> Tensor<T> {
        self.sum_to(&Shape::new(&vec![1; self.rank()]))
            .reshape(Shape::scalar())
    }

    /// The mean of all elements, as a scalar tensor.
    pub fn mean(&self) -> Tensor<T> {
        self.sum().mul_scalar(1.0 / self.numel().max(1) as f64)
    }

    /// Sums over `axes` (negative counts from the end), keeping them with extent 1 when
    /// `keep_dim`.
    #[track_caller]
    pub fn sum_axes(&self, axes: &[isize], keep_dim: bool) -> Tensor<T> {
        let axes: Vec<usize> = axes.iter().map(|&a| self.shape().axis(a)).collect();
        let kept = self.shape().reduced(&axes, true);
        let summed = self.sum_to(&kept);
        if keep_dim {
            summed
        } else {
            summed.reshape(self.shape().reduced(&axes, false))
        }
    }

    /// Means over `axes`, as [`Tensor::sum_axes`].
    #[track_caller]
    pub fn mean_axes(&self, axes: &[isize], keep_dim: bool) -> Tensor<T> {
        let count: usize = axes.iter().map(|&a| self.dim(a)).product();
        self.sum_axes(axes, keep_dim)
            .mul_scalar(1.0 / count.max(1) as f64)
    }

    /// The maximum over `axis`. The gradient flows to the maximal elements, shared equally
    /// among ties; it is piecewise constant, so higher derivatives see the selected elements
    /// only.
    #[track_caller]
    pub fn max_axis(&self, axis: isize, keep_dim: bool) -> Tensor<T> {
        let ax = self.shape().axis(axis);
        let kept = self.shape().reduced(&[ax], true);
        let data = max_axis(self.data(), self.shape(), ax);
        let max = Tensor::<T>::from_vec(data.clone(), kept.clone());

        // Which elements attain the maximum, each weighted 1 / (number of ties).
        let hit = max.broadcast_to(self.shape());
        let mask = zip(self.data(), hit.data(), |x, m| {
            if x == m { T::one() } else { T::zero() }
        });
        let mask = self.with_data(mask);
        let ties = mask.sum_to(&kept).broadcast_to(self.shape());
        let weights = self.with_data(zip(mask.data(), ties.data(), |m, t| m / t));

        let out = Tensor::from_op(data, kept, "max", [self], move |c| {
            vec![Some(&c.grad.broadcast_to(weights.shape()) * &weights)]
        });
        if keep_dim {
            out
        } else {
            out.reshape(self.shape().reduced(&[ax], false))
        }
    }

    /// The maximum of all elements, as a scalar tensor.
    pub fn max(&self) -> Tensor<T> {
        self.reshape([self.numel()]).max_axis(0, false)
    }

    /// log(sum(exp(x))) over `axis`, computed stably by shifting by the (constant) maximum.
    #[track_caller]
    pub fn logsumexp(&self, axis: isize, keep_dim: bool) -> Tensor<T> {
        let ax = self.shape().axis(axis);
        let kept = self.shape().reduced(&[ax], true);
        let shift = max_axis(self.data(), self.shape(), ax);
        let shift = Tensor::from_vec(
            shift
                .into_iter()
                .map(|m| if m.is_finite() { m } else { T::zero() })
                .collect(),
            kept,
        );
        let lse = (self - &shift).exp().sum_axes(&[ax as isize], true).log() + &shift;
        if keep_dim {
            lse
        } else {
            lse.reshape(self.shape().reduced(&[ax], false))
        }
    }

    /// log-softmax over `axis`: x - logsumexp(x).
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Tensor<T> {
        self - &self.logsumexp(axis, true)
    }

    /// Softmax over `axis`.
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Tensor<T> {
        self.log_softmax(axis).exp()
    }
}
