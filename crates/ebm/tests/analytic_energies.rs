//! The analytic energies: closed forms against autodiff and finite differences, normalisers
//! against quadrature, exact samplers against their moments, validation and specs.

use ebm::energy::{
    BananaConfig, BananaEnergy, DoubleWellConfig, DoubleWellEnergy, Energy, EnergyModel,
    EnergySpec, GaussianEnergy, GaussianMixtureConfig, GaussianMixtureEnergy,
    NoiseConditionalEnergy, RingConfig, RingEnergy, energies,
};
use ebm_nn::{StateDict, load_safetensors, save_safetensors};
use ebm_tensor::Tensor;
use ebm_tensor::check::{CheckOptions, check_gradients};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_f64s(values, shape)
}

fn gaussian_2d() -> GaussianEnergy<f64> {
    let mean = t(&[0.5, -1.0], &[2]);
    let cov = t(&[1.5, 0.6, 0.6, 0.8], &[2, 2]);
    GaussianEnergy::from_mean_covariance(&mean, &cov).unwrap()
}

/// A 3-D Gaussian whose parameters are arbitrary values, the masked upper triangle included.
fn gaussian_3d() -> GaussianEnergy<f64> {
    let mut g = GaussianEnergy::new(3).unwrap();
    let mut r = rng(1);
    let p = g.params_mut();
    p.set("mean", Tensor::randn([3], &mut r)).unwrap();
    p.set(
        "precision_tril",
        Tensor::randn([3, 3], &mut r).mul_scalar(0.5),
    )
    .unwrap();
    p.set(
        "precision_log_diag",
        Tensor::randn([3], &mut r).mul_scalar(0.3),
    )
    .unwrap();
    g
}

fn mixture() -> GaussianMixtureEnergy<f64> {
    let weights = t(&[0.2, 0.5, 0.3], &[3]);
    let means = t(&[-2.0, 0.0, 1.0, 1.0, 0.5, -1.5], &[3, 2]);
    let stds = t(&[0.5, 0.8, 0.3], &[3]);
    GaussianMixtureEnergy::from_parts(&weights, &means, &stds).unwrap()
}

fn banana(dim: usize) -> BananaEnergy<f64> {
    BananaEnergy::new(BananaConfig {
        dim,
        scale: 0.8,
        curvature: 0.25,
    })
    .unwrap()
}

fn ring() -> RingEnergy<f64> {
    RingEnergy::new(RingConfig {
        dim: 2,
        radius: 2.0,
        scale: 0.3,
    })
    .unwrap()
}

fn double_well() -> DoubleWellEnergy<f64> {
    DoubleWellEnergy::new(DoubleWellConfig {
        dim: 2,
        barrier: 2.0,
    })
    .unwrap()
}

/// A copy of `model` whose parameters, in store order, are `values`.
fn with_params<M: EnergyModel<f64> + Clone>(model: &M, values: &[Tensor<f64>]) -> M {
    let mut model = model.clone();
    let names: Vec<String> = model.params().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names.len(), values.len());
    for (name, value) in names.iter().zip(values) {
        model.params_mut().set(name, value.clone()).unwrap();
    }
    model
}

fn param_values<M: EnergyModel<f64>>(model: &M) -> Vec<Tensor<f64>> {
    model.params().iter().map(|(_, p)| p.detach()).collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: element {i}: {x} vs {y}"
        );
    }
}

// The closed forms against the autodiff path of the trait's defaults (a closure around
// `energy` uses them). Both are exact; they differ by rounding only, so 1e-12 relative.
#[test]
fn closed_form_gradient_and_laplacian_equal_autodiff() {
    let g = gaussian_3d();
    let m = mixture();
    let x3 = Tensor::randn([16, 3], &mut rng(2));
    let x2 = Tensor::randn([16, 2], &mut rng(3)).mul_scalar(1.5);
    let cases: [(&dyn Energy<f64>, Tensor<f64>); 3] =
        [(&g, x3), (&m, x2.clone()), (&m.smoothed(0.7).unwrap(), x2)];
    for (i, (energy, x)) in cases.iter().enumerate() {
        let autodiff = |x: &Tensor<f64>| energy.energy(x);
        let (e, grad) = energy.energy_and_grad(x, false).unwrap();
        let (e_ad, grad_ad) = autodiff.energy_and_grad(x, false).unwrap();
        assert!(
            !e.requires_grad() && !grad.requires_grad(),
            "case {i}: detached"
        );
        assert_close(&e.to_f64s(), &e_ad.to_f64s(), 1e-12, "energy");
        assert_close(&grad.to_f64s(), &grad_ad.to_f64s(), 1e-12, "gradient");
        let score = energy.score(x).unwrap().to_f64s();
        let minus_grad: Vec<f64> = grad_ad.to_f64s().iter().map(|v| -v).collect();
        assert_close(&score, &minus_grad, 1e-12, "score");
        let lap = energy.laplacian(x, false).unwrap();
        let lap_ad = autodiff.laplacian(x, false).unwrap();
        assert_close(&lap.to_f64s(), &lap_ad.to_f64s(), 1e-12, "laplacian");
    }
}

// Finite differences: check_gradients' defaults (eps 1e-6, atol 1e-6, rtol 1e-5) are four
// orders above the error of a central difference on these smooth functions of order 1.
#[test]
fn energies_match_finite_differences_to_second_order_in_x() {
    let options = CheckOptions::default();
    let models: [(&str, &dyn Energy<f64>, usize); 6] = [
        ("gaussian", &gaussian_3d(), 3),
        ("gmm", &mixture(), 2),
        ("banana", &banana(3), 3),
        ("ring", &ring(), 2),
        ("double-well", &double_well(), 2),
        ("gmm at sigma", &mixture().smoothed(0.5).unwrap(), 2),
    ];
    for (name, energy, d) in models {
        let x = Tensor::randn([5, d], &mut rng(4)).mul_scalar(1.3);
        check_gradients(&|v| energy.energy(&v[0]), &[x], 2, &options)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn energies_match_finite_differences_in_the_parameters() {
    fn check<M: EnergyModel<f64> + Clone>(name: &str, model: &M, d: usize) {
        let x = Tensor::randn([4, d], &mut rng(5)).mul_scalar(1.3);
        let mut inputs = vec![x];
        inputs.extend(param_values(model));
        let f = |v: &[Tensor<f64>]| with_params(model, &v[1..]).energy(&v[0]);
        check_gradients(&f, &inputs, 1, &CheckOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    check("gaussian", &gaussian_3d(), 3);
    check("gmm", &mixture(), 2);
    check("banana", &banana(3), 3);
    check("ring", &ring(), 2);
    check("double-well", &double_well(), 2);
}

#[test]
fn closed_forms_match_finite_differences_in_x_and_the_parameters() {
    fn check<M: EnergyModel<f64> + Clone>(name: &str, model: &M, d: usize) {
        let x = Tensor::randn([4, d], &mut rng(6)).mul_scalar(1.3);
        let mut inputs = vec![x];
        inputs.extend(param_values(model));
        let options = CheckOptions::default();
        let grad = |v: &[Tensor<f64>]| {
            let model = with_params(model, &v[1..]);
            model.energy_and_grad(&v[0], true).unwrap().1
        };
        check_gradients(&grad, &inputs, 1, &options)
            .unwrap_or_else(|e| panic!("{name} gradient: {e}"));
        let laplacian = |v: &[Tensor<f64>]| {
            let model = with_params(model, &v[1..]);
            model.laplacian(&v[0], true).unwrap()
        };
        check_gradients(&laplacian, &inputs, 1, &options)
            .unwrap_or_else(|e| panic!("{name} laplacian: {e}"));
    }
    check("gaussian", &gaussian_3d(), 3);
    check("gmm", &mixture(), 2);
}

#[test]
fn log_probs_and_noise_conditional_energy_match_finite_differences_in_the_parameters() {
    let options = CheckOptions::default();
    let x = Tensor::randn([4, 3], &mut rng(7));
    let g = gaussian_3d();
    let mut inputs = vec![x.clone()];
    inputs.extend(param_values(&g));
    let f = |v: &[Tensor<f64>]| with_params(&g, &v[1..]).log_prob(&v[0]);
    check_gradients(&f, &inputs, 1, &options).unwrap();

    let b = banana(3);
    let mut inputs = vec![x];
    inputs.extend(param_values(&b));
    let f = |v: &[Tensor<f64>]| with_params(&b, &v[1..]).log_prob(&v[0]);
    check_gradients(&f, &inputs, 1, &options).unwrap();

    let m = mixture();
    let x = Tensor::randn([4, 2], &mut rng(8));
    let sigma = t(&[0.1, 0.5, 1.0, 2.0], &[4]);
    let mut inputs = vec![x, sigma];
    inputs.extend(param_values(&m));
    let f = |v: &[Tensor<f64>]| with_params(&m, &v[2..]).energy_at(&v[0], &v[1]);
    check_gradients(&f, &inputs, 2, &options).unwrap();
}

/// log of the integral of exp(-E) over the box [a0, b0] x [a1, b1] by the trapezoid rule with
/// step h (the integrands vanish at the edges, so this is the plain sum times h^2).
fn grid_log_z(energy: &dyn Energy<f64>, x0: (f64, f64), x1: (f64, f64), h: f64) -> f64 {
    let n0 = ((x0.1 - x0.0) / h).round() as usize + 1;
    let n1 = ((x1.1 - x1.0) / h).round() as usize + 1;
    let mut points = Vec::with_capacity(2 * n0 * n1);
    for i in 0..n0 {
        for j in 0..n1 {
            points.push(x0.0 + i as f64 * h);
            points.push(x1.0 + j as f64 * h);
        }
    }
    let e = energies(energy, &t(&points, &[n0 * n1, 2])).to_f64s();
    let min = e.iter().cloned().fold(f64::INFINITY, f64::min);
    let sum: f64 = e.iter().map(|v| (min - v).exp()).sum();
    -min + sum.ln() + 2.0 * h.ln()
}

// The trapezoid rule on a smooth integrand that vanishes at the box's edges (below about
// e^-24 of its peak: 7 standard deviations or more) converges faster than any power of h; with h = 0.02 and widths >= 0.3 its
// error is far below rounding (the sums of ~10^6 terms agree to ~1e-13), so 1e-10 on log Z
// leaves room only for a wrong formula.
#[test]
fn log_normalizers_match_grid_quadrature() {
    let h = 0.02;
    let g = gaussian_2d();
    type Case<'a> = (&'a str, &'a dyn Energy<f64>, f64, (f64, f64), (f64, f64));
    let cases: [Case; 5] = [
        (
            "gaussian",
            &g,
            g.log_normalizer(),
            (-9.0, 10.0),
            (-8.0, 6.0),
        ),
        ("gmm", &mixture(), 0.0, (-6.0, 7.0), (-6.0, 7.0)),
        (
            "banana",
            &banana(2),
            banana(2).log_normalizer(),
            (-7.5, 7.5),
            (-8.0, 21.0),
        ),
        (
            "ring",
            &ring(),
            ring().log_normalizer(),
            (-4.5, 4.5),
            (-4.5, 4.5),
        ),
        (
            "double-well",
            &double_well(),
            double_well().log_normalizer(),
            (-3.0, 3.0),
            (-8.0, 8.0),
        ),
    ];
    for (name, energy, log_z, x0, x1) in cases {
        let grid = grid_log_z(energy, x0, x1, h);
        assert!(
            (grid - log_z).abs() < 1e-10,
            "{name}: grid {grid}, closed form {log_z}"
        );
    }
    assert_eq!(mixture().log_normalizer(), 0.0);
}

/// Sample means and covariances, with their standard errors: sd / sqrt(n) for a mean, the
/// sample sd of (x_i - m_i)(x_j - m_j) over sqrt(n) for a covariance.
struct Moments {
    mean: Vec<f64>,
    mean_se: Vec<f64>,
    cov: Vec<f64>,
    cov_se: Vec<f64>,
}

fn moments(x: &Tensor<f64>) -> Moments {
    let (n, d) = (x.dim(0), x.dim(1));
    let v = x.to_f64s();
    let nf = n as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|i| v[i * d + j]).sum::<f64>() / nf)
        .collect();
    let mut cov = vec![0.0; d * d];
    let mut cov_se = vec![0.0; d * d];
    for a in 0..d {
        for b in 0..d {
            let products: Vec<f64> = (0..n)
                .map(|i| (v[i * d + a] - mean[a]) * (v[i * d + b] - mean[b]))
                .collect();
            let m = products.iter().sum::<f64>() / nf;
            let var = products.iter().map(|p| (p - m).powi(2)).sum::<f64>() / nf;
            cov[a * d + b] = m;
            cov_se[a * d + b] = (var / nf).sqrt();
        }
    }
    let mean_se = (0..d).map(|j| (cov[j * d + j] / nf).sqrt()).collect();
    Moments {
        mean,
        mean_se,
        cov,
        cov_se,
    }
}

// 5 standard errors: each comparison fails for a correct sampler with probability < 6e-7
// (normal approximation, n = 1e5), so a test of at most 65 comparisons < 4e-5.
fn assert_moments(name: &str, x: &Tensor<f64>, mean: &[f64], cov: &[f64]) {
    let m = moments(x);
    assert_within_5_se(name, "mean", &m.mean, mean, &m.mean_se);
    assert_within_5_se(name, "covariance", &m.cov, cov, &m.cov_se);
}

fn assert_within_5_se(name: &str, what: &str, sample: &[f64], expected: &[f64], se: &[f64]) {
    assert_eq!(sample.len(), expected.len());
    for (k, ((s, e), se)) in sample.iter().zip(expected).zip(se).enumerate() {
        assert!(
            (s - e).abs() < 5.0 * se,
            "{name}: {what} {k}: sample {s} vs {e} (se {se})"
        );
    }
}

const N_SAMPLES: usize = 100_000;

#[test]
fn gaussian_samples_match_mean_and_covariance() {
    let g = gaussian_2d();
    let x = g.sample(N_SAMPLES, &mut rng(10));
    assert_moments("2-D", &x, &[0.5, -1.0], &[1.5, 0.6, 0.6, 0.8]);

    // 10-D, covariance A A^T + I for a random A.
    let d = 10;
    let a = Tensor::<f64>::randn([d, d], &mut rng(11)).mul_scalar(0.4);
    let cov = &a.matmul_t(&a, false, true) + &Tensor::from_f64s(&identity(d), [d, d]);
    let mean = Tensor::randn([d], &mut rng(12));
    let g = GaussianEnergy::from_mean_covariance(&mean, &cov).unwrap();
    let x = g.sample(N_SAMPLES, &mut rng(13));
    assert_moments("10-D", &x, &mean.to_f64s(), &cov.to_f64s());
}

fn identity(d: usize) -> Vec<f64> {
    (0..d * d)
        .map(|k| if k % d == k / d { 1.0 } else { 0.0 })
        .collect()
}

#[test]
fn mixture_samples_match_mean_and_covariance() {
    // mean = sum_k w_k mu_k; cov = sum_k w_k (s_k^2 I + mu_k mu_k^T) - mean mean^T.
    let m = mixture();
    let (w, mu, s) = (
        m.weights().to_f64s(),
        m.means().to_f64s(),
        m.stds().to_f64s(),
    );
    let mean: Vec<f64> = (0..2)
        .map(|j| (0..3).map(|k| w[k] * mu[k * 2 + j]).sum())
        .collect();
    let mut cov = vec![0.0; 4];
    for a in 0..2 {
        for b in 0..2 {
            let second: f64 = (0..3)
                .map(|k| {
                    let spread = if a == b { s[k] * s[k] } else { 0.0 };
                    w[k] * (spread + mu[k * 2 + a] * mu[k * 2 + b])
                })
                .sum();
            cov[a * 2 + b] = second - mean[a] * mean[b];
        }
    }
    let x = m.sample(N_SAMPLES, &mut rng(14));
    assert_moments("gmm", &x, &mean, &cov);
}

#[test]
fn banana_samples_match_mean_and_covariance() {
    // mean 0, cov diag(s^2, 1 + 2 b^2 s^4, 1) with s = 0.8, b = 0.25.
    let x = banana(3).sample(N_SAMPLES, &mut rng(15));
    let (s, b) = (0.8f64, 0.25f64);
    let var1 = 1.0 + 2.0 * b * b * s.powi(4);
    let cov = [s * s, 0.0, 0.0, 0.0, var1, 0.0, 0.0, 0.0, 1.0];
    assert_moments("banana", &x, &[0.0; 3], &cov);
}

/// int f over [lo, hi] by the midpoint rule with 200 000 cells (error << the 5 standard errors
/// that the sample checks allow).
fn integrate(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    let n = 200_000;
    let h = (hi - lo) / n as f64;
    (0..n).map(|i| f(lo + (i as f64 + 0.5) * h)).sum::<f64>() * h
}

#[test]
fn double_well_samples_match_mean_and_covariance() {
    // Mean 0; var x_0 = int t^2 exp(-a (t^2 - 1)^2) / int exp(-a (t^2 - 1)^2); var x_1 = 1.
    let a = 2.0;
    let density = |t: f64| (-a * (t * t - 1.0f64).powi(2)).exp();
    let var0 = integrate(|t| t * t * density(t), -4.0, 4.0) / integrate(density, -4.0, 4.0);
    let x = double_well().sample(N_SAMPLES, &mut rng(16));
    assert_moments("double-well", &x, &[0.0, 0.0], &[var0, 0.0, 0.0, 1.0]);
}

#[test]
fn ring_samples_match_mean_covariance_and_radius() {
    // Radial density rho exp(-(rho - r)^2 / (2 s^2)) on rho > 0, uniform angle: mean 0,
    // cov E[rho^2] / 2 I, and E[rho] by quadrature.
    let (r, s) = (2.0, 0.3);
    let q = |rho: f64| rho * (-(rho - r) * (rho - r) / (2.0 * s * s)).exp();
    let z = integrate(q, 0.0, 6.0);
    let mean_rho = integrate(|rho| rho * q(rho), 0.0, 6.0) / z;
    let mean_rho2 = integrate(|rho| rho * rho * q(rho), 0.0, 6.0) / z;
    let x = ring().sample(N_SAMPLES, &mut rng(17));
    let half = mean_rho2 / 2.0;
    assert_moments("ring", &x, &[0.0, 0.0], &[half, 0.0, 0.0, half]);

    let norms = x.square().sum_axes(&[1], true).sqrt();
    let m = moments(&norms);
    assert_within_5_se("ring", "E|x|", &m.mean, &[mean_rho], &m.mean_se);
}

#[test]
fn smoothed_mixture_is_the_convolution_with_gaussian_noise() {
    // p_sigma(x) = int p(y) N(x; y, sigma^2 I) dy by a 2-D grid sum over y (the integrand is
    // smooth and vanishes at the box edges: error far below the 1e-8 allowed).
    let m = mixture();
    let sigma = 0.6;
    let smoothed = m.smoothed(sigma).unwrap();
    let x = t(&[0.3, -0.4, -1.5, 0.8, 2.0, 2.0], &[3, 2]);
    let h = 0.02;
    let n = 551; // y in [-5.5, 5.5]^2
    let mut grid = Vec::with_capacity(2 * n * n);
    for i in 0..n {
        for j in 0..n {
            grid.push(-5.5 + i as f64 * h);
            grid.push(-5.5 + j as f64 * h);
        }
    }
    let y = t(&grid, &[n * n, 2]);
    let p = energies(&m, &y).to_f64s();
    let exact = energies(&smoothed, &x).to_f64s();
    let xs = x.to_f64s();
    for k in 0..3 {
        let (x0, x1) = (xs[2 * k], xs[2 * k + 1]);
        let density: f64 = (0..n * n)
            .map(|i| {
                let d2 = (grid[2 * i] - x0).powi(2) + (grid[2 * i + 1] - x1).powi(2);
                let noise = (-d2 / (2.0 * sigma * sigma)).exp()
                    / (2.0 * std::f64::consts::PI * sigma * sigma);
                (-p[i]).exp() * noise
            })
            .sum::<f64>()
            * h
            * h;
        assert!(
            (-density.ln() - exact[k]).abs() < 1e-8,
            "x {k}: {} vs {}",
            -density.ln(),
            exact[k]
        );
    }

    // The noise-conditional energy at per-sample sigma is the smoothed mixture's.
    let sigmas = t(&[sigma; 3], &[3]);
    assert_close(
        &m.energy_at(&x, &sigmas).to_f64s(),
        &exact,
        1e-12,
        "energy_at",
    );
    assert!(m.smoothed(-0.1).is_err());
}

#[test]
fn from_mean_covariance_round_trips_mean_covariance_and_precision() {
    let cov = [2.0, 0.3, -0.5, 0.3, 1.0, 0.2, -0.5, 0.2, 1.5];
    let mean = [1.0, -2.0, 0.5];
    let g = GaussianEnergy::from_mean_covariance(&t(&mean, &[3]), &t(&cov, &[3, 3])).unwrap();
    assert_close(&g.mean().to_f64s(), &mean, 1e-14, "mean");
    assert_close(&g.covariance().to_f64s(), &cov, 1e-12, "covariance");
    let product = g.precision().matmul(&g.covariance()).to_f64s();
    assert_close(&product, &identity(3), 1e-12, "precision x covariance");

    // log Z = d/2 log 2 pi + log det(Sigma) / 2; det by cofactors.
    let det = cov[0] * (cov[4] * cov[8] - cov[5] * cov[7])
        - cov[1] * (cov[3] * cov[8] - cov[5] * cov[6])
        + cov[2] * (cov[3] * cov[7] - cov[4] * cov[6]);
    let log_z = 1.5 * (2.0 * std::f64::consts::PI).ln() + 0.5 * det.ln();
    assert!((g.log_normalizer() - log_z).abs() < 1e-12);
}

fn message<T>(result: Result<T, ebm::Error>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_configs_give_errors_naming_the_value() {
    let not_spd = GaussianEnergy::from_mean_covariance(
        &t(&[0.0, 0.0], &[2]),
        &t(&[1.0, 2.0, 2.0, 1.0], &[2, 2]),
    );
    let e = message(not_spd);
    assert!(
        e.contains("[[1, 2], [2, 1]]") && e.contains("positive-definite"),
        "{e}"
    );

    let asymmetric = GaussianEnergy::from_mean_covariance(
        &t(&[0.0, 0.0], &[2]),
        &t(&[1.0, 0.5, 0.2, 1.0], &[2, 2]),
    );
    let e = message(asymmetric);
    assert!(e.contains("0.5") && e.contains("0.2"), "{e}");

    let wrong_shape =
        GaussianEnergy::from_mean_covariance(&t(&[0.0, 0.0], &[2]), &t(&[1.0; 9], &[3, 3]));
    assert!(matches!(wrong_shape, Err(ebm::Error::Shape { .. })));

    let e = message(GaussianEnergy::<f64>::new(0));
    assert!(e.contains("Gaussian dim") && e.contains("got 0"), "{e}");

    let ring = RingEnergy::<f64>::new(RingConfig {
        dim: 2,
        radius: 1.0,
        scale: -0.5,
    });
    let e = message(ring);
    assert!(e.contains("ring scale") && e.contains("-0.5"), "{e}");

    let banana = BananaEnergy::<f64>::new(BananaConfig {
        dim: 1,
        scale: 1.0,
        curvature: 0.1,
    });
    assert!(message(banana).contains("banana dim: got 1"));

    let well = DoubleWellEnergy::<f64>::new(DoubleWellConfig {
        dim: 2,
        barrier: 0.0,
    });
    assert!(message(well).contains("double-well barrier: got 0"));

    let stds = t(&[1.0, -1.0], &[2]);
    let gmm =
        GaussianMixtureEnergy::from_parts(&t(&[0.5, 0.5], &[2]), &t(&[0.0; 2], &[2, 1]), &stds);
    let e = message(gmm);
    assert!(e.contains("std 1") && e.contains("-1"), "{e}");

    let config = GaussianMixtureConfig {
        dim: 2,
        n_components: 0,
    };
    let e = message(GaussianMixtureEnergy::<f64>::new(config, &mut rng(0)));
    assert!(e.contains("n_components") && e.contains("got 0"), "{e}");
}

#[test]
fn specs_rebuild_the_same_architecture() {
    let mut r = rng(20);
    let gmm = GaussianMixtureEnergy::new(
        GaussianMixtureConfig {
            dim: 3,
            n_components: 4,
        },
        &mut r,
    )
    .unwrap();
    let models: Vec<Box<dyn EnergyModel<f64>>> = vec![
        Box::new(gaussian_3d()),
        Box::new(gmm),
        Box::new(double_well()),
        Box::new(banana(3)),
        Box::new(ring()),
    ];
    let mut kinds = Vec::new();
    for model in &models {
        let spec = model.spec();
        let rebuilt = EnergySpec::from_json(&spec.to_json())
            .unwrap()
            .build::<f64, _>(&mut r)
            .unwrap();
        assert_eq!(rebuilt.spec(), spec);
        let shapes = |m: &dyn EnergyModel<f64>| -> Vec<(String, Vec<usize>)> {
            let p = m.params();
            p.iter()
                .map(|(n, t)| (n.to_string(), t.dims().to_vec()))
                .collect()
        };
        assert_eq!(shapes(rebuilt.as_ref()), shapes(model.as_ref()));
        kinds.push(spec.kind);
    }
    assert_eq!(kinds, ["gaussian", "gmm", "double-well", "banana", "ring"]);
    assert!(
        kinds
            .iter()
            .all(|k| EnergySpec::KINDS.contains(&k.as_str()))
    );

    // Unknown settings and kinds are refused with what to do.
    let extra = EnergySpec::from_json(r#"{"kind": "gaussian", "dim": 2, "extra": 1}"#).unwrap();
    let e = message(extra.build::<f64, _>(&mut r).map(|_| ()));
    assert!(e.contains("extra"), "{e}");
    let unknown = EnergySpec::from_json(r#"{"kind": "moon"}"#).unwrap();
    let e = message(unknown.build::<f64, _>(&mut r).map(|_| ()));
    assert!(e.contains("ring") && e.contains("gmm"), "{e}");
}

#[test]
fn checkpoint_restores_trained_parameters() {
    // A model with arbitrary parameters, saved, then rebuilt from its spec and loaded: the
    // energies agree exactly.
    let model = gaussian_3d();
    let path =
        std::env::temp_dir().join(format!("ebm-analytic-{}.safetensors", std::process::id()));
    save_safetensors(&path, model.params(), &StateDict::new()).unwrap();
    let mut rebuilt = model.spec().build::<f64, _>(&mut rng(0)).unwrap();
    load_safetensors(&path, rebuilt.params_mut()).unwrap();
    std::fs::remove_file(&path).unwrap();
    let x = Tensor::randn([8, 3], &mut rng(21));
    assert_eq!(
        energies(rebuilt.as_ref(), &x).to_f64s(),
        energies(&model, &x).to_f64s()
    );
}
