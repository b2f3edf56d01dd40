//! Shapes: the extents of a tensor's axes, row-major, with numpy broadcasting.

use smallvec::SmallVec;
use std::fmt;

/// The extents of a tensor's axes, outermost first (row-major, batch-first).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(SmallVec<[usize; 4]>);

impl Shape {
    /// A shape from its extents.
    pub fn new(dims: &[usize]) -> Self {
        Shape(SmallVec::from_slice(dims))
    }

    /// The shape of a scalar (no axes, one element).
    pub fn scalar() -> Self {
        Shape(SmallVec::new())
    }

    /// The extents.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides, in elements.
    pub fn strides(&self) -> SmallVec<[usize; 4]> {
        let mut strides = SmallVec::from_elem(1, self.rank());
        for i in (0..self.rank().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }

    /// The extent of `axis`; negative axes count from the end.
    #[track_caller]
    pub fn dim(&self, axis: isize) -> usize {
        self.0[self.axis(axis)]
    }

    /// Resolves a possibly negative axis to an index in `0..rank`.
    #[track_caller]
    pub fn axis(&self, axis: isize) -> usize {
        let rank = self.rank() as isize;
        let resolved = if axis < 0 { axis + rank } else { axis };
        assert!(
            (0..rank).contains(&resolved),
            "axis {axis} is out of range for a tensor of shape {self:?} (rank {rank})"
        );
        resolved as usize
    }

    /// The numpy broadcast of two shapes, or `None` when they are incompatible.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let rank = self.rank().max(other.rank());
        let mut dims = SmallVec::from_elem(1, rank);
        for i in 0..rank {
            let a = self.dim_from_end(rank - 1 - i);
            let b = other.dim_from_end(rank - 1 - i);
            dims[i] = match (a, b) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => return None,
            };
        }
        Some(Shape(dims))
    }

    /// Whether this shape broadcasts to `target` (numpy rules).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        self.rank() <= target.rank() && self.broadcast(target).as_ref() == Some(target)
    }

    /// Extent of the axis `k` places from the end, 1 past the front.
    fn dim_from_end(&self, k: usize) -> usize {
        if k < self.rank() {
            self.0[self.rank() - 1 - k]
        } else {
            1
        }
    }

    /// This shape with the given axes set to 1 (`keep_dim`) or removed.
    pub fn reduced(&self, axes: &[usize], keep_dim: bool) -> Shape {
        let mut dims = SmallVec::new();
        for (i, &d) in self.0.iter().enumerate() {
            if !axes.contains(&i) {
                dims.push(d);
            } else if keep_dim {
                dims.push(1);
            }
        }
        Shape(dims)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_slice())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::new(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape::new(&dims)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape(SmallVec::from_vec(dims))
    }
}

impl From<&Shape> for Shape {
    fn from(shape: &Shape) -> Self {
        shape.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy_rules() {
        let a = Shape::new(&[4, 1, 3]);
        let b = Shape::new(&[5, 1]);
        assert_eq!(a.broadcast(&b), Some(Shape::new(&[4, 5, 3])));
        assert_eq!(Shape::new(&[2, 3]).broadcast(&Shape::new(&[3, 2])), None);
        assert!(Shape::new(&[3]).broadcasts_to(&Shape::new(&[2, 3])));
        assert!(!Shape::new(&[2, 3]).broadcasts_to(&Shape::new(&[3])));
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(Shape::new(&[2, 3, 4]).strides().as_slice(), &[12, 4, 1]);
        assert_eq!(Shape::scalar().numel(), 1);
    }
}
