//! Arithmetic with broadcasting: `+ - * /`, negation, and affine maps by scalars.

use crate::kernels::elementwise::{broadcast_zip, map};
use crate::{Float, Shape, Tensor};
use std::ops::{Add, Div, Mul, Neg, Sub};

#[derive(Clone, Copy, Debug)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
        }
    }
}

#[track_caller]
fn binary<T: Float>(a: &Tensor<T>, b: &Tensor<T>, op: Binary) -> Tensor<T> {
    let shape = a.shape().broadcast(b.shape()).unwrap_or_else(|| {
        panic!(
            "{}: shapes {} and {} do not broadcast",
            op.name(),
            a.shape(),
            b.shape()
        )
    });
    let (x, sx, y, sy) = (a.data(), a.shape(), b.data(), b.shape());
    let data = match op {
        Binary::Add => broadcast_zip(x, sx, y, sy, &shape, |u, v| u + v),
        Binary::Sub => broadcast_zip(x, sx, y, sy, &shape, |u, v| u - v),
        Binary::Mul => broadcast_zip(x, sx, y, sy, &shape, |u, v| u * v),
        Binary::Div => broadcast_zip(x, sx, y, sy, &shape, |u, v| u / v),
    };
    Tensor::from_op(data, shape, op.name(), [a, b], move |c| {
        let (a, b, g) = (c.input(0), c.input(1), c.grad);
        let (ga, gb) = match op {
            Binary::Add => (c.needs(0).then(|| g.clone()), c.needs(1).then(|| g.clone())),
            Binary::Sub => (c.needs(0).then(|| g.clone()), c.needs(1).then(|| -g)),
            Binary::Mul => (c.needs(0).then(|| g * b), c.needs(1).then(|| g * a)),
            // d(a/b)/db = -a/b^2 = -out/b
            Binary::Div => (
                c.needs(0).then(|| g / b),
                c.needs(1).then(|| -(g * c.out) / b),
            ),
        };
        vec![
            ga.map(|t| t.sum_to(a.shape())),
            gb.map(|t| t.sum_to(b.shape())),
        ]
    })
}

impl<T: Float> Tensor<T> {
    /// `scale * x + shift` elementwise, for scalars `scale` and `shift`.
    pub fn affine(&self, scale: f64, shift: f64) -> Tensor<T> {
        let (s, t) = (T::of(scale), T::of(shift));
        let data = map(self.data(), move |v| v * s + t);
        Tensor::from_op(data, self.shape().clone(), "affine", [self], move |c| {
            vec![Some(c.grad.affine(scale, 0.0))]
        })
    }

    /// Adds a scalar.
    pub fn add_scalar(&self, value: f64) -> Tensor<T> {
        self.affine(1.0, value)
    }

    /// Multiplies by a scalar.
    pub fn mul_scalar(&self, value: f64) -> Tensor<T> {
        self.affine(value, 0.0)
    }

    /// `value - x`.
    pub fn rsub_scalar(&self, value: f64) -> Tensor<T> {
        self.affine(-1.0, value)
    }

    /// Sums a gradient of a broadcast result back onto `shape` (the adjoint of
    /// [`Tensor::broadcast_to`]); the identity when the shapes agree.
    ///
    /// # Panics
    /// When `shape` does not broadcast to this tensor's shape.
    #[track_caller]
    pub fn sum_to(&self, shape: &Shape) -> Tensor<T> {
        if self.shape() == shape {
            return self.clone();
        }
        assert!(
            shape.broadcasts_to(self.shape()),
            "sum_to: {shape} does not broadcast to {}",
            self.shape()
        );
        let data = crate::kernels::reduce::sum_to(self.data(), self.shape(), shape);
        let from = self.shape().clone();
        Tensor::from_op(data, shape.clone(), "sum_to", [self], move |c| {
            vec![Some(c.grad.broadcast_to(&from))]
        })
    }

    /// This tensor repeated along broadcast axes to `shape` (numpy rules).
    ///
    /// # Panics
    /// When this shape does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &Shape) -> Tensor<T> {
        if self.shape() == shape {
            return self.clone();
        }
        assert!(
            self.shape().broadcasts_to(shape),
            "broadcast_to: {} does not broadcast to {shape}",
            self.shape()
        );
        let data = crate::kernels::layout::broadcast(self.data(), self.shape(), shape);
        let from = self.shape().clone();
        Tensor::from_op(data, shape.clone(), "broadcast_to", [self], move |c| {
            vec![Some(c.grad.sum_to(&from))]
        })
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl<T: Float> $trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                binary(self, rhs, $op)
            }
        }
        impl<T: Float> $trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                binary(&self, &rhs, $op)
            }
        }
        impl<T: Float> $trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                binary(&self, rhs, $op)
            }
        }
        impl<T: Float> $trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                binary(self, &rhs, $op)
            }
        }
    };
}

binary_operator!(Add, add, Binary::Add);
binary_operator!(Sub, sub, Binary::Sub);
binary_operator!(Mul, mul, Binary::Mul);
binary_operator!(Div, div, Binary::Div);

macro_rules! scalar_operator {
    ($trait:ident, $method:ident, |$x:ident, $v:ident| $body:expr) => {
        impl<T: Float> $trait<f64> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, $v: f64) -> Tensor<T> {
                let $x = self;
                $body
            }
        }
        impl<T: Float> $trait<f64> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, $v: f64) -> Tensor<T> {
                let $x = &self;
                $body
            }
        }
    };
}

scalar_operator!(Add, add, |x, v| x.affine(1.0, v));
scalar_operator!(Sub, sub, |x, v| x.affine(1.0, -v));
scalar_operator!(Mul, mul, |x, v| x.affine(v, 0.0));
scalar_operator!(Div, div, |x, v| x.affine(1.0 / v, 0.0));

impl<T: Float> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        self.affine(-1.0, 0.0)
    }
}

impl<T: Float> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        self.affine(-1.0, 0.0)
    }
}
