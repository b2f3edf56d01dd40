//! Random tensors: moments of `randn`, `rand_uniform` and `rademacher`, Kolmogorov-Smirnov
//! tests against their distribution functions, and reproducibility from a seed.
//!
//! Tolerances. Every moment is compared with its exact value to within five standard errors of
//! its estimator from N = 100,000 draws. Under a correct sampler an estimate lands that far out
//! with probability about 6e-7 (both tails of a normal), so a new seed or a new generator will
//! not make these tests fail by chance, while a bias of five standard errors (0.016 in the mean
//! of `randn`, 0.022 in its variance) is caught. The Kolmogorov-Smirnov tests use the 1%
//! critical value 1.63 / sqrt(N) of the limiting distribution: a correct sampler fails one seed
//! in a hundred, and the seeds are fixed so that the outcome is reproducible.

use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Draws per test.
const N: usize = 100_000;

/// How many standard errors an estimate may be from its exact value (see the module docs).
const STANDARD_ERRORS: f64 = 5.0;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Sample mean and unbiased sample variance.
fn moments(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Asserts that `estimate` is within [`STANDARD_ERRORS`] standard errors `se` of `exact`.
#[track_caller]
fn assert_close(what: &str, estimate: f64, exact: f64, se: f64) {
    let z = (estimate - exact) / se;
    assert!(
        z.abs() < STANDARD_ERRORS,
        "{what}: {estimate} vs {exact} is {z:.2} standard errors ({se:.2e}) away"
    );
}

/// The Kolmogorov-Smirnov statistic sup_x |F_N(x) - F(x)| of a sample against a continuous
/// distribution function `cdf`. The empirical F_N jumps from i / N to (i + 1) / N at the i-th
/// smallest value, so the supremum is reached at one side of a jump.
fn ks_statistic(sample: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

/// The 1% critical value of the Kolmogorov-Smirnov statistic for a sample of `n`: the limiting
/// distribution gives P(sqrt(n) D > 1.63) = 0.01.
fn ks_critical_1_percent(n: usize) -> f64 {
    1.63 / (n as f64).sqrt()
}

/// The standard normal distribution function, Phi(x) = (1 + erf(x / sqrt 2)) / 2, with erf from
/// Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, far below the KS critical value
/// of about 5e-3).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + erf.copysign(x))
}

#[test]
fn normal_cdf_matches_tabulated_values() {
    let table = [
        (0.0, 0.5),
        (1.0, 0.841_344_746_068_542_9),
        (-1.96, 0.024_997_895_148_220_435),
        (2.5, 0.993_790_334_674_223_8),
        (-4.0, 3.167_124_183_311_992e-5),
    ];
    for (x, phi) in table {
        assert!((normal_cdf(x) - phi).abs() < 2e-7, "Phi({x})");
    }
}

#[test]
fn randn_has_mean_zero_and_variance_one() {
    // Normal draws: the mean has standard error 1 / sqrt(N); the sample variance has standard
    // error sqrt((mu_4 - sigma^4) / N) = sqrt(2 / N), as mu_4 = 3 for a standard normal.
    let n = N as f64;
    let x = Tensor::<f64>::randn([N], &mut rng(1)).to_f64s();
    let (mean, var) = moments(&x);
    assert_close("randn f64 mean", mean, 0.0, 1.0 / n.sqrt());
    assert_close("randn f64 variance", var, 1.0, (2.0 / n).sqrt());

    let x = Tensor::<f32>::randn([100, N / 100], &mut rng(2)).to_f64s();
    let (mean, var) = moments(&x);
    assert_close("randn f32 mean", mean, 0.0, 1.0 / n.sqrt());
    assert_close("randn f32 variance", var, 1.0, (2.0 / n).sqrt());
}

#[test]
fn rand_uniform_has_the_moments_of_its_interval() {
    // Uniform on [a, b): mean (a + b) / 2, variance (b - a)^2 / 12, fourth central moment
    // (b - a)^4 / 80, so the sample variance has standard error (b - a)^2 / sqrt(180 N).
    let (a, b) = (-1.5, 3.0);
    let n = N as f64;
    let x = Tensor::<f64>::rand_uniform([N], a, b, &mut rng(3)).to_f64s();
    assert!(x.iter().all(|&v| (a..b).contains(&v)));
    let (mean, var) = moments(&x);
    let width = b - a;
    let exact_var = width * width / 12.0;
    assert_close("uniform mean", mean, (a + b) / 2.0, (exact_var / n).sqrt());
    assert_close(
        "uniform variance",
        var,
        exact_var,
        width * width / (180.0 * n).sqrt(),
    );
}

#[test]
fn rademacher_is_plus_or_minus_one_with_equal_odds() {
    // Entries are +-1, so the variance about 0 is exactly 1 and the mean, of variance 1 / N,
    // carries all the information: it is 2 p - 1 for p = P(+1).
    let n = N as f64;
    let x = Tensor::<f64>::rademacher([N], &mut rng(4)).to_f64s();
    assert!(x.iter().all(|&v| v == 1.0 || v == -1.0));
    let (mean, var) = moments(&x);
    assert_close("rademacher mean", mean, 0.0, 1.0 / n.sqrt());
    assert!((var - 1.0).abs() < 1e-3, "rademacher variance {var}");

    let x = Tensor::<f32>::rademacher([N], &mut rng(5)).to_f64s();
    assert!(x.iter().all(|&v| v == 1.0 || v == -1.0));
    assert_close("rademacher f32 mean", moments(&x).0, 0.0, 1.0 / n.sqrt());
}

#[test]
fn randn_passes_a_kolmogorov_smirnov_test() {
    let x = Tensor::<f64>::randn([N], &mut rng(6)).to_f64s();
    let d = ks_statistic(&x, normal_cdf);
    let critical = ks_critical_1_percent(N);
    assert!(d < critical, "KS statistic {d} >= {critical}");
}

#[test]
fn kolmogorov_smirnov_test_detects_a_five_percent_scale_error() {
    // The test has the power to matter: N(0, 1.05^2) differs from Phi by about 0.011 near
    // x = +-1, twice the critical value.
    let x = Tensor::<f64>::randn([N], &mut rng(7))
        .mul_scalar(1.05)
        .to_f64s();
    let d = ks_statistic(&x, normal_cdf);
    assert!(d > ks_critical_1_percent(N), "KS statistic {d}");
}

#[test]
fn rand_uniform_passes_a_kolmogorov_smirnov_test() {
    let (a, b) = (-1.5, 3.0);
    let x = Tensor::<f64>::rand_uniform([N], a, b, &mut rng(8)).to_f64s();
    let d = ks_statistic(&x, |v| ((v - a) / (b - a)).clamp(0.0, 1.0));
    let critical = ks_critical_1_percent(N);
    assert!(d < critical, "KS statistic {d} >= {critical}");
}

#[test]
fn the_same_seed_gives_the_same_tensor() {
    let shape = [3, 50];
    let draw = |seed: u64| {
        let mut r = rng(seed);
        (
            Tensor::<f64>::randn(shape, &mut r).to_vec(),
            Tensor::<f64>::rand_uniform(shape, 0.0, 2.0, &mut r).to_vec(),
            Tensor::<f32>::rademacher(shape, &mut r).to_vec(),
        )
    };
    assert_eq!(draw(9), draw(9));
    let (normal, uniform, signs) = draw(9);
    let (other_normal, other_uniform, other_signs) = draw(10);
    assert_ne!(normal, other_normal);
    assert_ne!(uniform, other_uniform);
    assert_ne!(signs, other_signs);
}

#[test]
#[should_panic(expected = "rand_uniform: need finite low < high")]
fn rand_uniform_rejects_an_empty_interval() {
    Tensor::<f64>::rand_uniform([2], 1.0, 1.0, &mut rng(0));
}
