//! Matrix products, plain and batched, with transposes folded into the kernel.

use crate::kernels::matmul::gemm;
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
        let mut out = vec![T::zero(); plan.out.numel()];
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
            let oi = &mut out[i * so..(i + 1) * so];
            gemm(plan.m, plan.k, plan.n, ai, ta, bi, tb, oi, false);
        }
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
