//! Matrix products, plain and batched, with transposes folded into the kernel.

use crate::kernels::matmul::{gemm, gemm_uninit};
use crate::{Float, Shape, Tensor};

impl<T: Float> Tensor<T> {
    /// The matrix product.
    ///
    /// # Shapes
    /// `[m, k] x [k, n] -> [m, n]`; batched `[b, m, k] x [b, k, n] -> [b, m, n]`; a matrix on
    /// either side of a batch is shared by every item (`[m, k] x [b, k, n]`, `[b, m, k] x [k, n]`).
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        self.matmul_t(other, false, false)
    }

    /// `op(a) op(b)`, where op transposes the last two axes when its flag is set; no transpose
    /// is materialised. The backward rules of matrix products are written with this.
    #[track_caller]
    pub fn matmul_t(&self, other: &Tensor<T>, ta: bool, tb: bool) -> Tensor<T> {
        let (a, b) = (self, other);
        let plan = Plan::new(a.shape(), ta, b.shape(), tb);
        let mut out = Vec::with_capacity(plan.out.numel());
        let spare = &mut out.spare_capacity_mut()[..plan.out.numel()];
        let (sa, sb, so) = (plan.m * plan.k, plan.k * plan.n, plan.m * plan.n);
        for i in 0..plan.batch {
            let ai = if plan.a_batched {
                &a.data()[i * sa..(i + 1) * sa]
            } else {
                a.data()
            };
            let bi = if plan.b_batched {
                &b.data()[i * sb..(i + 1) * sb]
            } else {
                b.data()
            };
            let oi = &mut spare[i * so..(i + 1) * so];
            gemm_uninit(plan.m, plan.k, plan.n, ai, ta, bi, tb, oi);
        }
        // SAFETY: gemm_uninit wrote every element of every batch item.
        unsafe { out.set_len(plan.out.numel()) };
        Tensor::from_op(out, plan.out, "matmul", [a, b], move |c| {
            let (a, b, g) = (c.input(0), c.input(1), c.grad);
            // C = op(A) op(B): dA and dB are products of G with the other factor, transposed
            // so that each lands in its input's stored layout.
            let ga = c.needs(0).then(|| {
                let ga = if ta {
                    b.matmul_t(g, tb, true)
                } else {
                    g.matmul_t(b, false, !tb)
                };
                ga.sum_to(a.shape())
            });
            let gb = c.needs(1).then(|| {
                let gb = if tb {
                    g.matmul_t(a, true, ta)
                } else {
                    a.matmul_t(g, !ta, false)
                };
                gb.sum_to(b.shape())
            });
            vec![ga, gb]
        })
    }
}

impl<T: Float> Tensor<T> {
    /// The affine map of a linear layer, `x W^T + b`, in one pass: the bias is written into the
    /// output first and the product added onto it (no separate broadcast addition).
    ///
    /// # Shapes
    /// `x`: `[n, in]`; `weight`: `[out, in]` (PyTorch's layout); `bias`: `[out]`; result
    /// `[n, out]`. A batch of matrices `[b, n, in]` is also accepted (product, then addition).
    ///
    /// # Panics
    /// When the shapes do not fit.
    #[track_caller]
    pub fn linear(&self, weight: &Tensor<T>, bias: Option<&Tensor<T>>) -> Tensor<T> {
        let (x, w) = (self, weight);
        if x.rank() == 3 {
            let y = x.matmul_t(w, false, true);
            return match bias {
                Some(b) => y + b,
                None => y,
            };
        }
        assert!(
            x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1),
            "linear: input {} does not fit weight {} (expected [n, in] and [out, in])",
            x.shape(),
            w.shape()
        );
        let (n, k, m) = (x.dim(0), x.dim(1), w.dim(0));
        let Some(b) = bias else {
            return x.matmul_t(w, false, true);
        };
        assert_eq!(b.dims(), &[m], "linear: bias {} for {m} outputs", b.shape());

        let mut out = Vec::with_capacity(n * m);
        for _ in 0..n {
            out.extend_from_slice(b.data());
        }
        gemm(n, k, m, x.data(), false, w.data(), true, &mut out, true);
        Tensor::from_op(out, Shape::new(&[n, m]), "linear", [x, w, b], |c| {
            let (x, w, g) = (c.input(0), c.input(1), c.grad);
            let gx = c.needs(0).then(|| g.matmul(w));
            let gw = c.needs(1).then(|| g.matmul_t(x, true, false));
            let gb = c.needs(2).then(|| g.sum_to(c.input(2).shape()));
            vec![gx, gw, gb]
        })
    }
}

/// The sizes of a (batched) product.
struct Plan {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a_batched: bool,
    b_batched: bool,
    out: Shape,
}

impl Plan {
    #[track_caller]
    fn new(a: &Shape, ta: bool, b: &Shape, tb: bool) -> Plan {
        let bad = || -> ! {
            panic!(
                "matmul: shapes {a} (transposed: {ta}) and {b} (transposed: {tb}) do not multiply"
            )
        };
        if !(2..=3).contains(&a.rank()) || !(2..=3).contains(&b.rank()) {
            bad();
        }
        let last2 = |s: &Shape, t: bool| {
            let (r, c) = (s.dims()[s.rank() - 2], s.dims()[s.rank() - 1]);
            if t { (c, r) } else { (r, c) }
        };
        let (m, k) = last2(a, ta);
        let (k2, n) = last2(b, tb);
        if k != k2 {
            bad();
        }
        let (a_batched, b_batched) = (a.rank() == 3, b.rank() == 3);
        let batch = match (a_batched, b_batched) {
            (true, true) if a.dims()[0] != b.dims()[0] => bad(),
            (true, _) => a.dims()[0],
            (false, true) => b.dims()[0],
            (false, false) => 1,
        };
        let out = if a_batched || b_batched {
            Shape::new(&[batch, m, n])
        } else {
            Shape::new(&[m, n])
        };
        Plan {
            batch,
            m,
            k,
            n,
            a_batched,
            b_batched,
            out,
        }
    }
}
