//! The tensor type: a shared, immutable buffer with a shape, and its place in the graph.

use crate::autodiff::graph::{GradFn, GradFnSlot, is_grad_enabled};
use crate::{Float, Shape, TensorError};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A dense, row-major CPU tensor of `f32` or `f64`, and a node of the autodiff graph.
///
/// Cloning is cheap (a reference count); the buffer is immutable once built, except through
/// [`Tensor::update_`] on a tensor nobody else shares. An operation on tensors that require
/// gradients records how to differentiate itself (see [`crate::autodiff`]); the graph lives
/// exactly as long as the tensors that reach it.
pub struct Tensor<T: Float = f32>(pub(crate) Arc<Node<T>>);

pub(crate) struct Node<T: Float> {
    pub(crate) id: u64,
    pub(crate) shape: Shape,
    pub(crate) data: Arc<Vec<T>>,
    pub(crate) requires_grad: bool,
    pub(crate) grad_fn: Mutex<GradFnSlot<T>>,
}

impl<T: Float> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        Tensor(self.0.clone())
    }
}

impl<T: Float> Tensor<T> {
    // ---- construction ----------------------------------------------------------------------

    pub(crate) fn leaf(data: Arc<Vec<T>>, shape: Shape, requires_grad: bool) -> Self {
        debug_assert_eq!(data.len(), shape.numel());
        Tensor(Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            data,
            requires_grad,
            grad_fn: Mutex::new(GradFnSlot::None),
        }))
    }

    /// The result of an operation: records `rule` (how to map the output's gradient to the
    /// inputs' gradients) when gradients are enabled and some input requires one.
    ///
    /// `rule` must build its results from differentiable operations on the tensors it is given,
    /// and must not capture tensors that carry a graph (constants such as masks are fine): that
    /// is what makes gradients of gradients work and graph memory free itself.
    pub(crate) fn from_op<const N: usize>(
        data: impl Into<Arc<Vec<T>>>,
        shape: Shape,
        name: &'static str,
        inputs: [&Tensor<T>; N],
        rule: impl Fn(&crate::autodiff::graph::Ctx<'_, T>) -> Vec<Option<Tensor<T>>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        let data = data.into();
        debug_assert_eq!(data.len(), shape.numel(), "{name}: buffer length vs shape");
        let record = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        if !record {
            return Tensor::leaf(data, shape, false);
        }
        let grad_fn = GradFn {
            name,
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            rule: Box::new(rule),
        };
        Tensor(Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            data,
            requires_grad: true,
            grad_fn: Mutex::new(GradFnSlot::Live(Arc::new(grad_fn))),
        }))
    }

    /// A tensor from a row-major buffer, or an error when the length does not fit the shape.
    pub fn try_from_vec(data: Vec<T>, shape: impl Into<Shape>) -> Result<Self, TensorError> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(TensorError::DataLength {
                len: data.len(),
                shape,
            });
        }
        Ok(Tensor::leaf(Arc::new(data), shape, false))
    }

    /// A tensor from a row-major buffer.
    ///
    /// # Panics
    /// When `data.len()` is not the product of the shape's extents.
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: impl Into<Shape>) -> Self {
        Self::try_from_vec(data, shape).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A tensor copied from a slice of `f64` values (rounded for `f32`).
    #[track_caller]
    pub fn from_f64s(values: &[f64], shape: impl Into<Shape>) -> Self {
        Self::from_vec(values.iter().map(|&v| T::of(v)).collect(), shape)
    }

    /// A tensor with every element equal to `value`.
    pub fn full(shape: impl Into<Shape>, value: f64) -> Self {
        let shape = shape.into();
        Tensor::leaf(Arc::new(vec![T::of(value); shape.numel()]), shape, false)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>) -> Self {
        Self::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: impl Into<Shape>) -> Self {
        Self::full(shape, 1.0)
    }

    /// A zero-dimensional tensor holding `value`.
    pub fn scalar(value: f64) -> Self {
        Self::full(Shape::scalar(), value)
    }

    /// Zeros with this tensor's shape.
    pub fn zeros_like(&self) -> Self {
        Self::zeros(self.shape())
    }

    /// Ones with this tensor's shape.
    pub fn ones_like(&self) -> Self {
        Self::ones(self.shape())
    }

    // ---- inspection ------------------------------------------------------------------------

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }

    /// The extents of the axes.
    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }

    /// The extent of `axis` (negative counts from the end).
    #[track_caller]
    pub fn dim(&self, axis: isize) -> usize {
        self.0.shape.dim(axis)
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.0.data.len()
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[T] {
        &self.0.data
    }

    /// The elements as a new `Vec`.
    pub fn to_vec(&self) -> Vec<T> {
        self.0.data.to_vec()
    }

    /// The elements converted to `f64`.
    pub fn to_f64s(&self) -> Vec<f64> {
        self.0.data.iter().map(|v| v.f64()).collect()
    }

    /// The single element of a one-element tensor, as `f64`.
    ///
    /// # Panics
    /// When the tensor has more or fewer than one element.
    #[track_caller]
    pub fn item(&self) -> f64 {
        assert_eq!(
            self.numel(),
            1,
            "item() needs one element, the shape is {}",
            self.shape()
        );
        self.0.data[0].f64()
    }

    /// A number that identifies this node of the graph (unique for the process's life).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Whether gradients flow to this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// Whether this tensor was made by a recorded operation (rather than being a leaf).
    pub fn has_grad_fn(&self) -> bool {
        !matches!(*self.0.grad_fn.lock().unwrap(), GradFnSlot::None)
    }

    /// The name of the operation that made this tensor, if it was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        match &*self.0.grad_fn.lock().unwrap() {
            GradFnSlot::Live(f) => Some(f.name),
            GradFnSlot::Freed(name) => Some(name),
            GradFnSlot::None => None,
        }
    }

    // ---- graph membership ------------------------------------------------------------------

    /// A leaf sharing this buffer that does (or does not) require gradients.
    ///
    /// This is how parameters and inputs to differentiate are made: the result has no history,
    /// so gradients stop there.
    pub fn set_requires_grad(self, requires_grad: bool) -> Self {
        Tensor::leaf(self.0.data.clone(), self.0.shape.clone(), requires_grad)
    }

    /// The same values, cut from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Self {
        Tensor::leaf(self.0.data.clone(), self.0.shape.clone(), false)
    }

    /// Changes the values in place when this handle is the only owner of the buffer, or writes
    /// them into a fresh buffer otherwise (copy on write); the result keeps `requires_grad` but
    /// has no history. Used by optimisers.
    pub fn update_(&mut self, f: impl FnOnce(&mut [T])) {
        let unique = Arc::get_mut(&mut self.0)
            .filter(|node| matches!(*node.grad_fn.lock().unwrap(), GradFnSlot::None))
            .and_then(|node| Arc::get_mut(&mut node.data));
        match unique {
            Some(data) => f(data),
            None => {
                let mut data = self.to_vec();
                f(&mut data);
                *self = Tensor::leaf(Arc::new(data), self.shape().clone(), self.requires_grad());
            }
        }
    }

    /// Overwrites, in place, row `indices[j]` along the first axis with row `j` of `src`
    /// (copy on write as [`Tensor::update_`]; no history). For buffers that live across steps,
    /// such as the replay buffer of persistent chains.
    ///
    /// # Panics
    /// When `src` is not `[indices.len(), ...]` with this tensor's other dimensions, or an index
    /// is out of range or repeated.
    ///
    /// # Example
    /// ```
    /// use ebm_tensor::Tensor;
    ///
    /// let mut t = Tensor::<f32>::zeros([3, 2]);
    /// t.index_copy_(&[2, 0], &Tensor::from_f64s(&[1.0, 2.0, 3.0, 4.0], [2, 2]));
    /// assert_eq!(t.to_f64s(), [3.0, 4.0, 0.0, 0.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn index_copy_(&mut self, indices: &[usize], src: &Tensor<T>) {
        assert!(self.rank() >= 1, "index_copy_ needs a tensor of rank >= 1");
        let rows = self.dims()[0];
        let mut want = self.dims().to_vec();
        want[0] = indices.len();
        assert_eq!(
            src.dims(),
            want.as_slice(),
            "index_copy_: src must be [indices.len(), ...] with the other dimensions of the target"
        );
        let mut seen = vec![false; rows];
        for &i in indices {
            assert!(
                i < rows,
                "index_copy_: index {i} is out of range for {rows} rows"
            );
            assert!(!seen[i], "index_copy_: index {i} appears twice");
            seen[i] = true;
        }
        let row = self.numel() / rows.max(1);
        let values = src.data();
        self.update_(|dst| crate::kernels::layout::copy_rows(dst, indices, values, row));
    }

    /// A tensor with the same shape and the values of `data`, as a leaf.
    pub(crate) fn with_data(&self, data: Vec<T>) -> Self {
        Tensor::leaf(Arc::new(data), self.shape().clone(), false)
    }

    /// The values converted to another element type, cut from the graph.
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        let data = self.0.data.iter().map(|v| U::of(v.f64())).collect();
        Tensor::leaf(Arc::new(data), self.shape().clone(), false)
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let data = self.data();
        write!(f, "Tensor<{}>{} [", T::DTYPE.name(), self.shape())?;
        for (i, v) in data.iter().take(SHOWN).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v}")?;
        }
        if data.len() > SHOWN {
            write!(f, ", ... ({} more)", data.len() - SHOWN)?;
        }
        write!(f, "]")?;
        if let Some(op) = self.op_name() {
            write!(f, " grad_fn={op}")?;
        } else if self.requires_grad() {
            write!(f, " requires_grad")?;
        }
        Ok(())
    }
}
