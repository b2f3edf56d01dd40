//! Restricted Boltzmann machines and block Gibbs sampling, checked against brute-force
//! enumeration in plain f64: free energies, log partition functions, gradients, and the
//! distribution that the chains reach.

use ebm::Error;
use ebm::energy::{
    BernoulliRbm, BernoulliRbmConfig, BlockConditionals, Energy, EnergyModel, EnergySpec,
    GaussianBernoulliRbm, GaussianBernoulliRbmConfig, RbmLayer,
};
use ebm::sampler::{BlockGibbs, BlockGibbsConfig};
use ebm_tensor::Tensor;
use ebm_tensor::check::{CheckOptions, check_gradients};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A Bernoulli RBM with weights N(0, weight_scale^2) and biases N(0, 0.5^2).
fn bernoulli_rbm(v: usize, h: usize, weight_scale: f64, seed: u64) -> BernoulliRbm<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = BernoulliRbmConfig {
        init_scale: weight_scale,
        ..BernoulliRbmConfig::new(v, h)
    };
    let mut rbm = BernoulliRbm::new(config, &mut rng).unwrap();
    let params = rbm.params_mut();
    params
        .set("visible_bias", Tensor::randn([v], &mut rng).mul_scalar(0.5))
        .unwrap();
    params
        .set("hidden_bias", Tensor::randn([h], &mut rng).mul_scalar(0.5))
        .unwrap();
    rbm
}

/// A Gaussian-Bernoulli RBM with trained sigma: weights N(0, weight_scale^2), biases
/// N(0, 0.5^2), log sigma N(0, 0.3^2).
fn gaussian_rbm(v: usize, h: usize, weight_scale: f64, seed: u64) -> GaussianBernoulliRbm<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = GaussianBernoulliRbmConfig {
        learn_sigma: true,
        init_scale: weight_scale,
        ..GaussianBernoulliRbmConfig::new(v, h)
    };
    let mut rbm = GaussianBernoulliRbm::new(config, &mut rng).unwrap();
    let params = rbm.params_mut();
    params
        .set("visible_bias", Tensor::randn([v], &mut rng).mul_scalar(0.5))
        .unwrap();
    params
        .set("hidden_bias", Tensor::randn([h], &mut rng).mul_scalar(0.5))
        .unwrap();
    params
        .set("log_sigma", Tensor::randn([v], &mut rng).mul_scalar(0.3))
        .unwrap();
    rbm
}

/// The parameters read back as plain numbers: W (`[H][V]`), b, c, and sigma.
struct Plain {
    w: Vec<Vec<f64>>,
    b: Vec<f64>,
    c: Vec<f64>,
    sigma: Vec<f64>,
}

impl Plain {
    fn of(weight: &Tensor<f64>, b: &Tensor<f64>, c: &Tensor<f64>, sigma: Vec<f64>) -> Self {
        let v = weight.dim(1);
        Plain {
            w: weight.to_f64s().chunks(v).map(<[f64]>::to_vec).collect(),
            b: b.to_f64s(),
            c: c.to_f64s(),
            sigma,
        }
    }

    fn bernoulli(rbm: &BernoulliRbm<f64>) -> Self {
        let ones = vec![1.0; rbm.n_visible()];
        Plain::of(rbm.weight(), rbm.visible_bias(), rbm.hidden_bias(), ones)
    }

    fn gaussian(rbm: &GaussianBernoulliRbm<f64>) -> Self {
        let sigma = rbm.sigma().to_f64s();
        Plain::of(rbm.weight(), rbm.visible_bias(), rbm.hidden_bias(), sigma)
    }

    /// sum_ij h_j W_ji v_i / sigma_i^2 + c^T h: the terms of E(v, h) with h in them (negated).
    fn coupling(&self, v: &[f64], h: &[f64]) -> f64 {
        let mut total = 0.0;
        for (j, hj) in h.iter().enumerate() {
            total += hj * self.c[j];
            for (i, vi) in v.iter().enumerate() {
                total += hj * self.w[j][i] * vi / (self.sigma[i] * self.sigma[i]);
            }
        }
        total
    }

    /// E(v, h) = -b^T v - c^T h - h^T W v.
    fn bernoulli_energy(&self, v: &[f64], h: &[f64]) -> f64 {
        let bias: f64 = v.iter().zip(&self.b).map(|(x, b)| x * b).sum();
        -bias - self.coupling(v, h)
    }

    /// E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h - sum_ij h_j W_ji v_i / sigma_i^2.
    fn gaussian_energy(&self, v: &[f64], h: &[f64]) -> f64 {
        let quadratic: f64 = (0..v.len())
            .map(|i| (v[i] - self.b[i]).powi(2) / (2.0 * self.sigma[i].powi(2)))
            .sum();
        quadratic - self.coupling(v, h)
    }
}

/// The bits of state s of k units, unit j being bit j.
fn bits(s: usize, k: usize) -> Vec<f64> {
    (0..k).map(|j| ((s >> j) & 1) as f64).collect()
}

/// log sum_i exp(x_i).
fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// -log sum_h exp(-E(v, h)) over the 2^H hidden states.
fn brute_free_energy(energy: impl Fn(&[f64], &[f64]) -> f64, v: &[f64], n_hidden: usize) -> f64 {
    let terms: Vec<f64> = (0..1 << n_hidden)
        .map(|s| -energy(v, &bits(s, n_hidden)))
        .collect();
    -log_sum_exp(&terms)
}

/// Asserts |a - b| <= tol for every pair.
#[track_caller]
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{k}]: {x} vs {y} (tol {tol})");
    }
}

// Free energies and log partition functions, against enumeration. In f64 the two sides differ
// only by rounding (values of order 10, a few dozen operations): 1e-10 leaves 4 orders of
// margin while any wrong term (a sign, a transpose, a missing sigma) is off by >= 1e-2.

#[test]
fn bernoulli_free_energy_sums_the_joint_energy_over_hidden_states() {
    let rbm = bernoulli_rbm(4, 3, 1.0, 1);
    let plain = Plain::bernoulli(&rbm);
    let mut rng = StdRng::seed_from_u64(2);

    // All 16 binary states, then real-valued rows (the identity holds for any real v).
    let mut rows: Vec<f64> = (0..16).flat_map(|s| bits(s, 4)).collect();
    rows.extend(Tensor::<f64>::randn([5, 4], &mut rng).to_f64s());
    let v = Tensor::from_f64s(&rows, [21, 4]);

    let expected: Vec<f64> = rows
        .chunks(4)
        .map(|r| brute_free_energy(|v, h| plain.bernoulli_energy(v, h), r, 3))
        .collect();
    assert_close("F(v)", &rbm.energy(&v).to_f64s(), &expected, 1e-10);

    // The joint energy at random hidden states.
    let h = Tensor::from_f64s(
        &(0..21).flat_map(|s| bits(s % 8, 3)).collect::<Vec<_>>(),
        [21, 3],
    );
    let joint: Vec<f64> = rows
        .chunks(4)
        .enumerate()
        .map(|(s, r)| plain.bernoulli_energy(r, &bits(s % 8, 3)))
        .collect();
    assert_close(
        "E(v, h)",
        &rbm.joint_energy(&v, &h).to_f64s(),
        &joint,
        1e-10,
    );
}

#[test]
fn gaussian_free_energy_sums_the_joint_energy_over_hidden_states() {
    let rbm = gaussian_rbm(3, 4, 1.0, 3);
    let plain = Plain::gaussian(&rbm);
    let mut rng = StdRng::seed_from_u64(4);
    let rows = Tensor::<f64>::randn([10, 3], &mut rng)
        .mul_scalar(1.5)
        .to_f64s();
    let v = Tensor::from_f64s(&rows, [10, 3]);

    let expected: Vec<f64> = rows
        .chunks(3)
        .map(|r| brute_free_energy(|v, h| plain.gaussian_energy(v, h), r, 4))
        .collect();
    assert_close("F(v)", &rbm.energy(&v).to_f64s(), &expected, 1e-10);

    let h = Tensor::from_f64s(
        &(0..10).flat_map(|s| bits(s, 4)).collect::<Vec<_>>(),
        [10, 4],
    );
    let joint: Vec<f64> = rows
        .chunks(3)
        .enumerate()
        .map(|(s, r)| plain.gaussian_energy(r, &bits(s, 4)))
        .collect();
    assert_close(
        "E(v, h)",
        &rbm.joint_energy(&v, &h).to_f64s(),
        &joint,
        1e-10,
    );
}

#[test]
fn bernoulli_log_partition_agrees_enumerating_either_layer() {
    let rbm = bernoulli_rbm(5, 7, 1.0, 5);
    let plain = Plain::bernoulli(&rbm);

    // Brute force over all 2^12 joint states.
    let terms: Vec<f64> = (0..1 << 12)
        .map(|s| -plain.bernoulli_energy(&bits(s & 31, 5), &bits(s >> 5, 7)))
        .collect();
    let expected = log_sum_exp(&terms);

    let by_visible = rbm
        .log_partition_enumerating(RbmLayer::Visible)
        .unwrap()
        .item();
    let by_hidden = rbm
        .log_partition_enumerating(RbmLayer::Hidden)
        .unwrap()
        .item();
    let exact = rbm.log_partition_exact().unwrap().item();
    assert_close(
        "log Z",
        &[by_visible, by_hidden, exact],
        &[expected; 3],
        1e-10,
    );

    // More visible than hidden units: log_partition_exact enumerates the hidden layer.
    let wide = bernoulli_rbm(9, 3, 1.0, 6);
    let by_visible = wide
        .log_partition_enumerating(RbmLayer::Visible)
        .unwrap()
        .item();
    let exact = wide.log_partition_exact().unwrap().item();
    assert_close("log Z (V > H)", &[exact], &[by_visible], 1e-10);
}

#[test]
fn gaussian_log_partition_matches_quadrature_of_the_free_energy() {
    // One visible unit: Z = int exp(-F(v)) dv by the trapezoid rule on [-15, 15] with step
    // 1e-3. The integrand is smooth and below e^-40 at the ends (mixture means within +-3,
    // sigma <= 1.5), so the rule's error is far below 1e-10 relative.
    let rbm = gaussian_rbm(1, 3, 1.0, 7);
    let n = 30_001;
    let step = 30.0 / (n - 1) as f64;
    let grid: Vec<f64> = (0..n).map(|k| -15.0 + k as f64 * step).collect();
    let minus_f = (-rbm.energy(&Tensor::from_f64s(&grid, [n, 1]))).to_f64s();
    let weights: Vec<f64> = (0..n)
        .map(|k| if k == 0 || k == n - 1 { 0.5 } else { 1.0 })
        .collect();
    let terms: Vec<f64> = minus_f
        .iter()
        .zip(&weights)
        .map(|(m, w)| m + w.ln() + step.ln())
        .collect();
    let quadrature = log_sum_exp(&terms);
    let exact = rbm.log_partition_exact().unwrap().item();
    assert_close("log Z", &[exact], &[quadrature], 1e-9);
}

#[test]
fn log_partition_rejects_layers_too_large_to_enumerate() {
    let mut rng = StdRng::seed_from_u64(8);
    let big = BernoulliRbm::<f64>::new(BernoulliRbmConfig::new(21, 22), &mut rng).unwrap();
    let err = big.log_partition_exact().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("at most 20"), "{err}");

    // One small layer is enough, when it is the one enumerated.
    let tall = BernoulliRbm::<f64>::new(BernoulliRbmConfig::new(21, 2), &mut rng).unwrap();
    assert!(tall.log_partition_enumerating(RbmLayer::Visible).is_err());
    assert!(tall.log_partition_exact().unwrap().item().is_finite());

    let config = GaussianBernoulliRbmConfig::new(2, 21);
    let gaussian = GaussianBernoulliRbm::<f64>::new(config, &mut rng).unwrap();
    assert!(gaussian.log_partition_exact().is_err());
}

// Gradients against central finite differences (ebm_tensor's default tolerances: atol 1e-6,
// rtol 1e-5, four orders above the error of a correct derivative at eps 1e-6).

#[test]
fn free_energy_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(9);
    let options = CheckOptions::default();

    // First and second order in v, for both kinds (F is smooth in real v).
    let gaussian = gaussian_rbm(3, 4, 1.0, 10);
    let bernoulli = bernoulli_rbm(4, 3, 1.0, 11);
    let v3 = Tensor::<f64>::randn([5, 3], &mut rng);
    let v4 = Tensor::<f64>::rand_uniform([5, 4], 0.0, 1.0, &mut rng);
    check_gradients(
        &|x| gaussian.energy(&x[0]),
        std::slice::from_ref(&v3),
        2,
        &options,
    )
    .unwrap_or_else(|e| panic!("Gaussian-Bernoulli F in v: {e}"));
    check_gradients(
        &|x| bernoulli.energy(&x[0]),
        std::slice::from_ref(&v4),
        2,
        &options,
    )
    .unwrap_or_else(|e| panic!("Bernoulli F in v: {e}"));

    // First order in the parameters: the check's inputs replace the stored leaves.
    let names = ["weight", "visible_bias", "hidden_bias", "log_sigma"];
    let mut inputs = vec![v3];
    inputs.extend(names.iter().map(|n| gaussian.params().expect(n).clone()));
    let f = |x: &[Tensor<f64>]| {
        let mut model = gaussian.clone();
        for (name, value) in names.iter().zip(&x[1..]) {
            model.params_mut().set(name, value.clone()).unwrap();
        }
        model.energy(&x[0])
    };
    check_gradients(&f, &inputs, 1, &options)
        .unwrap_or_else(|e| panic!("Gaussian-Bernoulli F in its parameters: {e}"));

    let mut inputs = vec![v4];
    inputs.extend(
        names[..3]
            .iter()
            .map(|n| bernoulli.params().expect(n).clone()),
    );
    let f = |x: &[Tensor<f64>]| {
        let mut model = bernoulli.clone();
        for (name, value) in names.iter().zip(&x[1..]) {
            model.params_mut().set(name, value.clone()).unwrap();
        }
        model.energy(&x[0])
    };
    check_gradients(&f, &inputs, 1, &options)
        .unwrap_or_else(|e| panic!("Bernoulli F in its parameters: {e}"));
}

// Block Gibbs sampling.

/// Chains for the statistical tests, and steps before their final states are read. Both
/// models below mix within a few sweeps (weights of scale <= 1 on <= 4 units), so after 40
/// steps the distance to the stationary law is negligible next to the sampling error.
const CHAINS: usize = 20_000;
const BURN_IN: usize = 40;

#[test]
fn block_gibbs_matches_the_exact_bernoulli_marginal() {
    let rbm = bernoulli_rbm(4, 3, 1.0, 12);
    let plain = Plain::bernoulli(&rbm);

    // Exact p(v) over the 16 visible states, from the joint in plain f64.
    let minus_f: Vec<f64> = (0..16)
        .map(|s| -brute_free_energy(|v, h| plain.bernoulli_energy(v, h), &bits(s, 4), 3))
        .collect();
    let log_z = log_sum_exp(&minus_f);
    let exact: Vec<f64> = minus_f.iter().map(|m| (m - log_z).exp()).collect();

    // Final states of independent chains, all started at v = 0: independent draws.
    let mut rng = StdRng::seed_from_u64(13);
    let gibbs = BlockGibbs::new(BlockGibbsConfig::default()).unwrap();
    let state = gibbs
        .init(&mut rng, Tensor::zeros([CHAINS, 4]), &rbm)
        .unwrap();
    let (state, infos) = gibbs.run(&mut rng, state, &rbm, BURN_IN);
    assert_eq!(infos.len(), BURN_IN);
    assert_eq!(infos[BURN_IN - 1].n_non_finite(), 0);

    let mut counts = [0usize; 16];
    for row in state.visible.to_f64s().chunks(4) {
        assert!(
            row.iter().all(|&x| x == 0.0 || x == 1.0),
            "non-binary {row:?}"
        );
        let s: usize = row
            .iter()
            .enumerate()
            .map(|(j, &x)| (x as usize) << j)
            .sum();
        counts[s] += 1;
    }

    // Pearson's chi-square over 16 cells has 15 degrees of freedom; 37.70 is its 99.9%
    // quantile, so a correct sampler fails with probability 1e-3 (for this seed it is fixed).
    // The approximation needs expected counts >= 5 in every cell.
    let expected: Vec<f64> = exact.iter().map(|p| p * CHAINS as f64).collect();
    assert!(expected.iter().all(|&e| e >= 5.0), "{expected:?}");
    let chi_square: f64 = counts
        .iter()
        .zip(&expected)
        .map(|(&o, e)| (o as f64 - e).powi(2) / e)
        .sum();
    assert!(
        chi_square < 37.70,
        "chi-square {chi_square}: counts {counts:?}, expected {expected:?}"
    );

    // The free energy in the info record is that of the final states.
    let mean_f = rbm.energy(&state.visible).mean().item();
    assert!((infos[BURN_IN - 1].mean_free_energy() - mean_f).abs() < 1e-12);
}

#[test]
fn block_gibbs_reproduces_gaussian_bernoulli_moments() {
    let rbm = gaussian_rbm(2, 3, 1.0, 14);
    let plain = Plain::gaussian(&rbm);
    let s2: Vec<f64> = plain.sigma.iter().map(|s| s * s).collect();

    // The visible marginal is a mixture over h of N(mu_h, diag(sigma^2)), mu_h = b + W^T h,
    // with weights proportional to exp(c^T h + sum_i (mu_hi^2 - b_i^2) / (2 sigma_i^2))
    // (integrate exp(-E(v, h)) over v by completing the square).
    let states: Vec<Vec<f64>> = (0..8).map(|s| bits(s, 3)).collect();
    let means: Vec<Vec<f64>> = states
        .iter()
        .map(|h| {
            (0..2)
                .map(|i| plain.b[i] + (0..3).map(|j| plain.w[j][i] * h[j]).sum::<f64>())
                .collect()
        })
        .collect();
    let log_w: Vec<f64> = states
        .iter()
        .zip(&means)
        .map(|(h, mu)| {
            let ch: f64 = h.iter().zip(&plain.c).map(|(h, c)| h * c).sum();
            ch + (0..2)
                .map(|i| (mu[i].powi(2) - plain.b[i].powi(2)) / (2.0 * s2[i]))
                .sum::<f64>()
        })
        .collect();
    let norm = log_sum_exp(&log_w);
    let pi: Vec<f64> = log_w.iter().map(|l| (l - norm).exp()).collect();
    let moment =
        |f: &dyn Fn(&[f64]) -> f64| -> f64 { pi.iter().zip(&means).map(|(p, mu)| p * f(mu)).sum() };

    // (name, statistic of a chain's v, its exact mean, its exact second moment)
    type Statistic = Box<dyn Fn(&[f64]) -> f64>;
    let mut checks: Vec<(String, Statistic, f64, f64)> = Vec::new();
    for i in 0..2 {
        let mean = moment(&|mu| mu[i]);
        let second = moment(&|mu| mu[i].powi(2) + s2[i]);
        let fourth =
            moment(&|mu| mu[i].powi(4) + 6.0 * mu[i].powi(2) * s2[i] + 3.0 * s2[i].powi(2));
        checks.push((format!("E[v_{i}]"), Box::new(move |v| v[i]), mean, second));
        checks.push((
            format!("E[v_{i}^2]"),
            Box::new(move |v| v[i] * v[i]),
            second,
            fourth,
        ));
    }
    let cross = moment(&|mu| mu[0] * mu[1]);
    let cross_sq = moment(&|mu| (mu[0].powi(2) + s2[0]) * (mu[1].powi(2) + s2[1]));
    checks.push((
        "E[v_0 v_1]".into(),
        Box::new(|v| v[0] * v[1]),
        cross,
        cross_sq,
    ));

    let mut rng = StdRng::seed_from_u64(15);
    let gibbs = BlockGibbs::new(BlockGibbsConfig::default()).unwrap();
    let state = gibbs
        .init(&mut rng, Tensor::zeros([CHAINS, 2]), &rbm)
        .unwrap();
    let (state, _) = gibbs.run(&mut rng, state, &rbm, BURN_IN);
    let v = state.visible.to_f64s();

    // Each sample moment within 5 standard errors sqrt(Var / n) of the exact one: a correct
    // sampler fails one of these 5 checks with probability < 5 * 5.7e-7.
    for (what, stat, mean, second) in checks {
        let sample = v.chunks(2).map(&stat).sum::<f64>() / CHAINS as f64;
        let se = ((second - mean * mean) / CHAINS as f64).sqrt();
        assert!(
            (sample - mean).abs() < 5.0 * se,
            "{what}: sample {sample}, exact {mean}, standard error {se}"
        );
    }
}

#[test]
fn several_sweeps_per_step_equal_as_many_single_sweep_steps() {
    let rbm = bernoulli_rbm(6, 5, 1.0, 16);
    let start = Tensor::zeros([50, 6]);
    let one = BlockGibbs::new(BlockGibbsConfig::default()).unwrap();
    let three = BlockGibbs::new(BlockGibbsConfig { n_sweeps: 3 }).unwrap();

    let mut rng = StdRng::seed_from_u64(17);
    let state = one.init(&mut rng, start.clone(), &rbm).unwrap();
    let (a, _) = one.run(&mut rng, state, &rbm, 3);
    let mut rng = StdRng::seed_from_u64(17);
    let state = three.init(&mut rng, start, &rbm).unwrap();
    let (b, _) = three.step(&mut rng, state, &rbm);
    assert_eq!(a.visible.to_f64s(), b.visible.to_f64s());
    assert_eq!(a.hidden.to_f64s(), b.hidden.to_f64s());
}

// Settings and specs.

#[test]
fn invalid_settings_are_rejected_with_the_offending_value() {
    let mut rng = StdRng::seed_from_u64(18);
    let cases = [
        (BernoulliRbmConfig::new(0, 3), "n_visible"),
        (BernoulliRbmConfig::new(3, 0), "n_hidden"),
        (
            BernoulliRbmConfig {
                init_scale: -1.0,
                ..BernoulliRbmConfig::new(3, 3)
            },
            "init_scale",
        ),
        (
            BernoulliRbmConfig {
                init_scale: f64::NAN,
                ..BernoulliRbmConfig::new(3, 3)
            },
            "init_scale",
        ),
    ];
    for (config, field) in cases {
        let err = BernoulliRbm::<f64>::new(config, &mut rng).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains(field),
            "{err}"
        );
    }
    let cases = [
        (GaussianBernoulliRbmConfig::new(0, 3), "n_visible"),
        (GaussianBernoulliRbmConfig::new(3, 0), "n_hidden"),
        (
            GaussianBernoulliRbmConfig {
                init_scale: f64::INFINITY,
                ..GaussianBernoulliRbmConfig::new(3, 3)
            },
            "init_scale",
        ),
    ];
    for (config, field) in cases {
        let err = GaussianBernoulliRbm::<f64>::new(config, &mut rng).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains(field),
            "{err}"
        );
    }

    let err = BlockGibbs::new(BlockGibbsConfig { n_sweeps: 0 }).unwrap_err();
    assert!(err.to_string().contains("n_sweeps"), "{err}");

    // Chains must match the model's visible layer and be at least one.
    let rbm = bernoulli_rbm(4, 3, 1.0, 19);
    let gibbs = BlockGibbs::new(BlockGibbsConfig::default()).unwrap();
    for dims in [vec![10, 5], vec![0, 4], vec![4]] {
        let err = gibbs
            .init(&mut rng, Tensor::<f64>::zeros(dims.clone()), &rbm)
            .unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{dims:?}: {err}");
    }
}

#[test]
fn specs_rebuild_the_same_architecture() {
    assert!(EnergySpec::KINDS.contains(&"rbm") && EnergySpec::KINDS.contains(&"gaussian-rbm"));
    let mut rng = StdRng::seed_from_u64(20);
    let bernoulli = bernoulli_rbm(4, 3, 1.0, 21);
    let learnt = gaussian_rbm(3, 2, 1.0, 22);
    let fixed =
        GaussianBernoulliRbm::<f64>::new(GaussianBernoulliRbmConfig::new(3, 2), &mut rng).unwrap();
    let models: [&dyn EnergyModel<f64>; 3] = [&bernoulli, &learnt, &fixed];

    for model in models {
        let spec = EnergySpec::from_json(&model.spec().to_json()).unwrap();
        assert_eq!(spec, model.spec());
        let mut rebuilt = spec.build::<f64, _>(&mut rng).unwrap();
        assert_eq!(rebuilt.spec(), model.spec());
        let layout = |m: &dyn EnergyModel<f64>| -> Vec<(String, Vec<usize>)> {
            m.params()
                .iter_all()
                .map(|(n, _, t)| (n.to_string(), t.dims().to_vec()))
                .collect()
        };
        assert_eq!(layout(rebuilt.as_ref()), layout(model));

        // With the weights copied over, the energies agree.
        for (name, _, value) in model.params().iter_all() {
            rebuilt.params_mut().set(name, value.clone()).unwrap();
        }
        let x = Tensor::<f64>::rand_uniform(
            [
                4,
                model.spec().config["n_visible"].as_u64().unwrap() as usize,
            ],
            0.0,
            1.0,
            &mut rng,
        );
        assert_eq!(rebuilt.energy(&x).to_f64s(), model.energy(&x).to_f64s());
    }

    // sigma is trained only when asked: a parameter, else a buffer.
    assert_eq!((learnt.params().len(), fixed.params().len()), (4, 3));

    // Settings out of range or unknown fail through `build` too.
    let bad = EnergySpec::from_json(r#"{"kind": "rbm", "n_visible": 0, "n_hidden": 3}"#).unwrap();
    assert!(matches!(
        bad.build::<f64, _>(&mut rng),
        Err(Error::InvalidConfig { .. })
    ));
    let unknown = r#"{"kind": "gaussian-rbm", "n_visible": 2, "n_hidden": 3, "sigma": 1}"#;
    let unknown = EnergySpec::from_json(unknown).unwrap();
    assert!(matches!(
        unknown.build::<f64, _>(&mut rng),
        Err(Error::Restore { .. })
    ));
}
