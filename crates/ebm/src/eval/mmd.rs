//! The maximum mean discrepancy between two sample sets (Gretton et al. 2012).

use super::mean_and_standard_error;
use crate::Error;
use ebm_tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Points of the pooled sample that the median heuristic reads at most (evenly strided), so
/// that choosing the bandwidth costs O(1) whatever the sample sizes.
const MEDIAN_SUBSAMPLE: usize = 1000;

/// How [`mmd_squared`] chooses the bandwidth h of k(x, y) = exp(-||x - y||^2 / (2 h^2)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MmdBandwidth {
    /// h^2 = the median of ||z_i - z_j||^2 over pairs of the pooled sample (at most 1,000
    /// points of it, evenly strided): the median heuristic of Gretton et al.
    #[default]
    Median,
    /// A fixed h (finite, > 0).
    Fixed(f64),
}

/// What [`mmd_squared`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mmd {
    /// The unbiased estimate of MMD^2 (it can be slightly negative when the sets agree).
    pub mmd2: f64,
    /// Its standard error, from the first-order (Hoeffding) variance of the U-statistic:
    /// sqrt(4 var(f_x) / m + 4 var(f_y) / n), with f_x(x_i) the mean of k(x_i, x') over the
    /// other x' less the mean of k(x_i, y) over y (f_y alike). When the sets differ this is the
    /// leading term; when they come from one distribution the true spread is of order 1 / n
    /// and this plug-in, also of that order, is conservative (measured 1.4 times the
    /// spread over repeated draws, `crates/ebm/tests/eval_mmd.rs`).
    pub standard_error: f64,
    /// The bandwidth h used.
    pub bandwidth: f64,
}

/// The unbiased estimate of the squared maximum mean discrepancy between the samples `x`
/// (`[m, ...]`) and `y` (`[n, ...]`) with an RBF kernel:
///
/// ```text
/// MMD^2_u = 1/(m(m-1)) sum_{i != i'} k(x_i, x_i') + 1/(n(n-1)) sum_{j != j'} k(y_j, y_j')
///         - 2/(m n) sum_{i, j} k(x_i, y_j)
/// k(x, y) = exp(-||x - y||^2 / (2 h^2))
/// ```
///
/// MMD^2 is 0 exactly when the two distributions agree (the RBF kernel is characteristic).
/// Samples of any rank are flattened to `[m, d]`.
///
/// Cost: O((m + n)^2 d) time and O((m + n)^2) memory (three kernel matrices): use a few
/// thousand points per set.
///
/// Gretton, Borgwardt, Rasch, Schoelkopf & Smola, "A kernel two-sample test", JMLR 2012.
///
/// # Errors
/// [`Error::Shape`] for sets of fewer than 2 points or of different sample shapes;
/// [`Error::InvalidConfig`] for a fixed bandwidth that is not finite and positive, a median
/// bandwidth of 0 (mostly repeated points) or non-finite samples.
///
/// # Example
/// ```
/// use ebm::eval::{MmdBandwidth, mmd_squared};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let x = Tensor::<f64>::randn([500, 2], &mut rng);
/// let y = Tensor::<f64>::randn([500, 2], &mut rng).add_scalar(1.0);
/// let mmd = mmd_squared(&x, &y, MmdBandwidth::Median)?;
/// assert!(mmd.mmd2 > 10.0 * mmd.standard_error);
/// # Ok::<(), ebm::Error>(())
/// ```
pub fn mmd_squared<T: Float>(
    x: &Tensor<T>,
    y: &Tensor<T>,
    bandwidth: MmdBandwidth,
) -> Result<Mmd, Error> {
    if x.rank() < 1
        || y.rank() < 1
        || x.dim(0) < 2
        || y.dim(0) < 2
        || x.dims()[1..] != y.dims()[1..]
    {
        return Err(Error::Shape {
            what: format!("MMD between samples of shape {:?} and", x.dims()),
            expected: "two sets [m, ...] and [n, ...] of one sample shape, m, n >= 2".into(),
            found: y.dims().to_vec(),
        });
    }
    let x = Tensor::<f64>::from_f64s(&x.to_f64s(), [x.dim(0), x.numel() / x.dim(0)]);
    let y = Tensor::<f64>::from_f64s(&y.to_f64s(), [y.dim(0), y.numel() / y.dim(0)]);
    if x.data().iter().chain(y.data()).any(|v| !v.is_finite()) {
        return Err(Error::config(
            "MMD samples",
            "a value that is not finite",
            "finite samples; drop or fix the diverged chains",
        ));
    }
    let (m, n) = (x.dim(0), y.dim(0));

    // The bandwidth, then the three kernel matrices.
    let h = match bandwidth {
        MmdBandwidth::Fixed(h) => {
            crate::error::check_positive("MMD bandwidth", h)?;
            h
        }
        MmdBandwidth::Median => median_bandwidth(&x, &y)?,
    };
    let kernel = |a: &Tensor<f64>, b: &Tensor<f64>| {
        let sq = squared_distances(a, b);
        sq.mul_scalar(-1.0 / (2.0 * h * h)).exp().to_f64s()
    };
    let (kxx, kyy, kxy) = (kernel(&x, &x), kernel(&y, &y), kernel(&x, &y));

    // Row sums without the diagonal, and the cross sums both ways.
    let off_diagonal_rows = |k: &[f64], s: usize| -> Vec<f64> {
        (0..s)
            .map(|i| k[i * s..(i + 1) * s].iter().sum::<f64>() - k[i * s + i])
            .collect()
    };
    let rxx = off_diagonal_rows(&kxx, m);
    let ryy = off_diagonal_rows(&kyy, n);
    let rxy: Vec<f64> = (0..m)
        .map(|i| kxy[i * n..(i + 1) * n].iter().sum())
        .collect();
    let cxy: Vec<f64> = (0..n)
        .map(|j| (0..m).map(|i| kxy[i * n + j]).sum())
        .collect();
    let (mf, nf) = (m as f64, n as f64);
    let mmd2 = rxx.iter().sum::<f64>() / (mf * (mf - 1.0))
        + ryy.iter().sum::<f64>() / (nf * (nf - 1.0))
        - 2.0 * rxy.iter().sum::<f64>() / (mf * nf);

    // First-order variance of the two-sample U-statistic.
    let fx: Vec<f64> = rxx
        .iter()
        .zip(&rxy)
        .map(|(a, b)| a / (mf - 1.0) - b / nf)
        .collect();
    let fy: Vec<f64> = ryy
        .iter()
        .zip(&cxy)
        .map(|(a, b)| a / (nf - 1.0) - b / mf)
        .collect();
    let var_of = |f: &[f64]| {
        let se = mean_and_standard_error(f).1;
        se * se * f.len() as f64
    };
    let variance = 4.0 * var_of(&fx) / mf + 4.0 * var_of(&fy) / nf;
    Ok(Mmd {
        mmd2,
        standard_error: variance.sqrt(),
        bandwidth: h,
    })
}

/// ||a_i - b_j||^2 for all pairs, `[m, n]`, clamped at 0 against rounding.
fn squared_distances(a: &Tensor<f64>, b: &Tensor<f64>) -> Tensor<f64> {
    let na = a.square().sum_axes(&[1], true);
    let nb = b.square().sum_axes(&[1], true).reshape([1, b.dim(0)]);
    let cross = a.matmul_t(b, false, true).mul_scalar(-2.0);
    (&(&cross + &na) + &nb).clamp(0.0, f64::INFINITY)
}

/// sqrt of the median squared distance over the pairs of (a strided subsample of) x and y.
fn median_bandwidth(x: &Tensor<f64>, y: &Tensor<f64>) -> Result<f64, Error> {
    let pooled = Tensor::concat(&[x.clone(), y.clone()], 0);
    let total = pooled.dim(0);
    let stride = total.div_ceil(MEDIAN_SUBSAMPLE);
    let idx: Vec<usize> = (0..total).step_by(stride).collect();
    let z = pooled.index_select(0, &idx);
    let s = z.dim(0);
    let sq = squared_distances(&z, &z).to_f64s();
    let mut pairs: Vec<f64> = (0..s)
        .flat_map(|i| (i + 1..s).map(move |j| (i, j)))
        .map(|(i, j)| sq[i * s + j])
        .collect();
    let mid = pairs.len() / 2;
    let (_, median, _) = pairs.select_nth_unstable_by(mid, f64::total_cmp);
    let median = *median;
    if median <= 0.0 {
        return Err(Error::config(
            "MMD median bandwidth",
            "0 (most pairs of points coincide)",
            "samples with spread, or a fixed bandwidth MmdBandwidth::Fixed(h)",
        ));
    }
    Ok(median.sqrt())
}
