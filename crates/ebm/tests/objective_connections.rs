//! The two connections of Song & Kingma 2021 ("How to train your energy-based models",
//! sections 3-4), checked numerically on the parameter gradients of a 2-D Gaussian energy (and
//! of a small MLP energy for the first):
//!
//! 1. One-step Langevin contrastive divergence started at the data: E_z[grad CD] / eps tends to
//!    the gradient of the exact score-matching objective as the step size eps -> 0, with an
//!    O(eps) error.
//! 2. Conditional NCE with noise y = x + v z: 4 (L_CNCE - log 2) / v^2 and its gradient tend to
//!    the score-matching objective and its gradient as v -> 0, with an O(v^2) error.
//!
//! Both limits hold draw by draw for antithetic noise pairs (z, -z): averaged over the pair,
//! the rescaled CD gradient tends to the gradient of sliced score matching with projection z
//! (variance-reduced form, 1/2 ||s||^2 + z^T grad_x(z^T s)), and the rescaled CNCE loss to
//! non-variance-reduced sliced score matching (1/2 (z^T s)^2 + z^T grad_x(z^T s)). Comparing
//! against SSM with the same z removes the Monte Carlo error, so the O(eps) and O(v^2) rates
//! are checked exactly; the comparison against exact score matching (whose expectation over z
//! SSM is) then bounds the Monte Carlo error. The file also checks the [`ConditionalNce`]
//! objective itself: config validation, metrics, and consistency on a correlated 3-D Gaussian.

use ebm::energy::{Energy, EnergyModel, GaussianEnergy};
use ebm::objective::score_matching::{exact_score_matching, sliced_score_matching};
use ebm::objective::{
    ConditionalNce, ConditionalNceConfig, Objective, conditional_nce_loss, contrastive_loss,
};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The model: N([0.3, -0.2], [[1.2, 0.4], [0.4, 0.8]]), away from the data's Gaussian so that
/// the score-matching gradient is far from zero.
fn model() -> GaussianEnergy<f64> {
    GaussianEnergy::from_mean_covariance(
        &Tensor::from_f64s(&[0.3, -0.2], [2]),
        &Tensor::from_f64s(&[1.2, 0.4, 0.4, 0.8], [2, 2]),
    )
    .unwrap()
}

/// `n` draws of the data's Gaussian N([1, -1], [[1, 0.5], [0.5, 2]]).
fn data(n: usize, rng: &mut StdRng) -> Tensor<f64> {
    GaussianEnergy::<f64>::from_mean_covariance(
        &Tensor::from_f64s(&[1.0, -1.0], [2]),
        &Tensor::from_f64s(&[1.0, 0.5, 0.5, 2.0], [2, 2]),
    )
    .unwrap()
    .sample(n, rng)
}

/// The gradient of `loss` in every parameter of the model, flattened; zeros for a parameter
/// that the loss does not depend on (the output bias of an MLP in any of these losses).
fn flat_grad<E: EnergyModel<f64>>(model: &E, loss: &Tensor<f64>) -> Vec<f64> {
    let grads = model.params().backward(loss).unwrap();
    grads
        .iter()
        .zip(model.params().iter())
        .flat_map(|((_, g), (_, p))| match g {
            Some(g) => g.to_f64s(),
            None => vec![0.0; p.to_f64s().len()],
        })
        .collect()
}

/// ||a - b|| / ||b||.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (diff / norm).sqrt()
}

/// Each of the `n` data points repeated `m` times, `[m n, 2]`, with standard normal noise of
/// that shape.
fn repeated_with_noise(n: usize, m: usize, rng: &mut StdRng) -> (Tensor<f64>, Tensor<f64>) {
    let x = data(n, rng);
    let x = Tensor::concat(&vec![x; m], 0);
    let z = Tensor::randn(x.shape().clone(), rng);
    (x, z)
}

/// The Monte Carlo standard error of the sliced-score-matching gradient over the projections
/// z, relative to the norm of `g_sm`: the gradient on 10 disjoint chunks of the rows (each a
/// whole number of copies of the data, so each an unbiased estimate of the exact SM gradient
/// on the data), whose spread over sqrt(10) is the standard error of their mean.
fn ssm_relative_standard_error<E: EnergyModel<f64>>(
    m: &E,
    x: &Tensor<f64>,
    z: &Tensor<f64>,
    variance_reduced: bool,
    g_sm: &[f64],
) -> f64 {
    let k = 10;
    let rows = x.dim(0) / k;
    let energy = |t: &Tensor<f64>| m.energy(t);
    let chunks: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            let (xi, zi) = (x.narrow(0, i * rows, rows), z.narrow(0, i * rows, rows));
            flat_grad(
                m,
                &sliced_score_matching(&energy, &xi, &zi, variance_reduced).unwrap(),
            )
        })
        .collect();
    let p = g_sm.len();
    let mut var_sum = 0.0;
    for j in 0..p {
        let mean = chunks.iter().map(|c| c[j]).sum::<f64>() / k as f64;
        let var = chunks.iter().map(|c| (c[j] - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
        var_sum += var / k as f64;
    }
    let norm: f64 = g_sm.iter().map(|g| g * g).sum::<f64>().sqrt();
    var_sum.sqrt() / norm
}

/// The gradient of one-step Langevin CD from the data x with antithetic noise (z, -z):
/// x'_+- = x - eps grad E(x) +- sqrt(2 eps) z, detached; loss mean E(x) - mean E(x').
fn cd1_gradient<E: EnergyModel<f64>>(
    m: &E,
    x: &Tensor<f64>,
    z: &Tensor<f64>,
    eps: f64,
) -> Vec<f64> {
    let (_, g) = m.energy_and_grad(x, false).unwrap();
    let drift = &x.detach() - &g.detach().mul_scalar(eps);
    let kick = z.mul_scalar((2.0 * eps).sqrt());
    let samples = Tensor::concat(&[&drift + &kick, &drift - &kick], 0).detach();
    let data = Tensor::concat(&[x.clone(), x.clone()], 0);
    let (loss, _, _) = contrastive_loss(m, &data, &samples, 0.0);
    flat_grad(m, &loss)
}

/// The CD-1 gradient over eps against SSM-VR with the same z and exact SM, at each of
/// `steps`: (relative errors to SSM, relative errors to SM, SSM's relative standard error).
fn cd1_errors<E: EnergyModel<f64>>(m: &E, steps: &[f64], seed: u64) -> (Vec<f64>, Vec<f64>, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // 200 data points, 250 antithetic noise pairs each: 100,000 Langevin steps. The same z for
    // every step size (common random numbers).
    let (x, z) = repeated_with_noise(200, 250, &mut rng);
    let energy = |t: &Tensor<f64>| m.energy(t);
    let g_sm = flat_grad(m, &exact_score_matching(&energy, &x).unwrap());
    let g_ssm = flat_grad(m, &sliced_score_matching(&energy, &x, &z, true).unwrap());

    let mut to_ssm = Vec::new();
    let mut to_sm = Vec::new();
    for &eps in steps {
        let g_cd: Vec<f64> = cd1_gradient(m, &x, &z, eps)
            .iter()
            .map(|g| g / eps)
            .collect();
        to_ssm.push(rel_err(&g_cd, &g_ssm));
        to_sm.push(rel_err(&g_cd, &g_sm));
    }
    let se = ssm_relative_standard_error(m, &x, &z, true, &g_sm);
    let mc = rel_err(&g_ssm, &g_sm);
    eprintln!("CD-1 / eps vs SSM-VR (same z): {to_ssm:?}; vs exact SM: {to_sm:?}");
    eprintln!("SSM-VR vs exact SM: {mc} (standard error {se})");
    assert!(
        mc < 4.0 * se,
        "SSM-VR is {mc} from exact SM, standard error {se}"
    );
    (to_ssm, to_sm, se)
}

#[test]
fn one_step_langevin_cd_gradient_over_step_size_tends_to_score_matching_gradient() {
    let steps = [0.1, 0.03, 0.01];
    let (to_ssm, to_sm, se) = cd1_errors(&model(), &steps, 11);

    // Against SSM with the same z the error is pure bias. grad_theta E is quadratic in x for a
    // Gaussian energy, so the second-order expansion in the step x' - x is exact and the bias is
    // exactly linear in eps: -1/2 eps E[grad_x^2 grad_theta E : g g^T]. So the relative error
    // over eps must be the same at every step size (to rounding; 1e-6 relative allows for the
    // f64 cancellation in [grad E(x) - grad E(x')] / eps, about 1e-16 / 0.01 per term).
    for (i, &eps) in steps.iter().enumerate() {
        let slope = to_ssm[i] / eps;
        let slope0 = to_ssm[0] / steps[0];
        assert!(
            (slope - slope0).abs() < 1e-6 * slope0,
            "the CD-1 bias is not linear in eps: {to_ssm:?} at {steps:?}"
        );
    }
    assert!(
        to_ssm[0] > 0.0 && to_ssm[2] < 0.1,
        "bias too large: {to_ssm:?}"
    );

    // Against exact score matching (on the same 200 points) the Monte Carlo error of SSM over
    // the 50,000 projections adds to that bias. With se its standard error, measured from 10
    // chunks, ||g_ssm - g_sm|| / ||g_sm|| exceeds 4 se with probability < 1e-4 (a chi-square
    // of about 5 degrees of freedom over its mean, beyond 16, with slack for the 9-dof estimate
    // of se); so the CD estimate must be within the measured bias plus 4 se of exact SM.
    for i in 0..steps.len() {
        assert!(
            to_sm[i] < to_ssm[i] + 4.0 * se,
            "CD-1 / eps is {} from exact SM at eps {} (bias {}, standard error {se})",
            to_sm[i],
            steps[i],
            to_ssm[i]
        );
    }
    assert!(
        to_sm[0] > to_sm[1] && to_sm[1] > to_sm[2],
        "no convergence to exact SM: {to_sm:?}"
    );
}

#[test]
fn one_step_langevin_cd_limit_holds_for_a_neural_energy() {
    use ebm::energy::{MlpEnergy, MlpEnergyConfig};
    let mut rng = StdRng::seed_from_u64(21);
    let mlp = MlpEnergy::<f64>::new(MlpEnergyConfig::new(&[2, 16, 1]), &mut rng).unwrap();
    let steps = [0.1, 0.03, 0.01, 0.003];
    let (to_ssm, to_sm, se) = cd1_errors(&mlp, &steps, 22);

    // Beyond the quadratic, the bias against SSM with the same z is eps b + O(eps^2): the
    // relative error over eps must settle to a constant. Measured 0.0961, 0.0976, 0.0981,
    // 0.0982; within 5% of the smallest step's fails for an O(1) or O(sqrt eps) error (the
    // slope would grow like 1/eps or 1/sqrt eps: 30x or 6x over this range).
    let slope_last = to_ssm[steps.len() - 1] / steps[steps.len() - 1];
    for (e, eps) in to_ssm.iter().zip(&steps) {
        assert!(
            (e / eps - slope_last).abs() < 0.05 * slope_last,
            "the CD-1 bias is not O(eps): {to_ssm:?} at {steps:?}"
        );
    }
    // Against exact SM: the bias plus 4 standard errors of SSM-VR (see the Gaussian test).
    for (i, &eps) in steps.iter().enumerate() {
        assert!(
            to_sm[i] < to_ssm[i] + 4.0 * se,
            "CD-1 / eps is {} from exact SM at eps {eps} (bias {}, standard error {se})",
            to_sm[i],
            to_ssm[i]
        );
    }
}

/// The CNCE loss of x against antithetic noisy copies x + v z and x - v z.
fn cnce_antithetic(
    m: &GaussianEnergy<f64>,
    x: &Tensor<f64>,
    z: &Tensor<f64>,
    v: f64,
) -> Tensor<f64> {
    let xx = Tensor::concat(&[x.clone(), x.clone()], 0);
    let zz = Tensor::concat(&[z.clone(), z.mul_scalar(-1.0)], 0);
    conditional_nce_loss(m, &xx, &zz, v)
}

#[test]
fn conditional_nce_rescaled_tends_to_score_matching_as_noise_vanishes() {
    let mut rng = StdRng::seed_from_u64(12);
    let (x, z) = repeated_with_noise(200, 250, &mut rng);
    let m = model();
    let energy = |t: &Tensor<f64>| m.energy(t);
    let sm = exact_score_matching(&energy, &x).unwrap();
    let ssm = sliced_score_matching(&energy, &x, &z, false).unwrap();
    let (sm_value, ssm_value) = (sm.item(), ssm.item());
    let g_sm = flat_grad(&m, &sm);
    let g_ssm = flat_grad(&m, &ssm);

    let scales = [0.1, 0.05, 0.025, 0.0125];
    let mut to_ssm = Vec::new();
    let mut to_sm = Vec::new();
    let mut value_err = Vec::new();
    for &v in &scales {
        let loss = cnce_antithetic(&m, &x, &z, v);
        let rescale = 4.0 / (v * v);
        let value = (loss.item() - std::f64::consts::LN_2) * rescale;
        value_err.push((value - ssm_value).abs() / ssm_value.abs());
        let g: Vec<f64> = flat_grad(&m, &loss).iter().map(|g| g * rescale).collect();
        to_ssm.push(rel_err(&g, &g_ssm));
        to_sm.push(rel_err(&g, &g_sm));
    }
    eprintln!(
        "CNCE rescaled vs SSM (same z): grad {to_ssm:?}, value {value_err:?}; grad vs exact SM: \
         {to_sm:?}; SM {sm_value}, SSM {ssm_value}"
    );

    // Against non-variance-reduced SSM with the same z the error is pure bias, O(v^2) with
    // O(v^4) corrections (module docs of conditional_nce): halving v must divide it by about 4.
    // Measured ratios 3.58, 3.87, 3.97 (the v^4 terms fade); [3.4, 4.4] fails for an O(v)
    // error (ratio 2) or a wrong rescaling (ratio 1 with a constant offset).
    for i in 0..scales.len() - 1 {
        for (what, errs) in [("gradient", &to_ssm), ("value", &value_err)] {
            let ratio = errs[i] / errs[i + 1];
            assert!(
                (3.4..4.4).contains(&ratio),
                "CNCE {what} error is not O(v^2): {errs:?} at {scales:?}"
            );
        }
    }
    assert!(
        to_ssm[scales.len() - 1] < 0.002,
        "bias too large: {to_ssm:?}"
    );

    // Against exact score matching: the Monte Carlo error of non-variance-reduced SSM, measured
    // as in the CD test (4 standard errors), plus the bias. Its 1/2 (z^T s)^2 term makes it
    // several times noisier than SSM-VR.
    let se = ssm_relative_standard_error(&m, &x, &z, false, &g_sm);
    let mc = rel_err(&g_ssm, &g_sm);
    eprintln!("SSM vs exact SM: {mc} (standard error {se})");
    assert!(
        mc < 4.0 * se,
        "SSM is {mc} from exact SM, standard error {se}"
    );
    for i in 0..scales.len() {
        assert!(
            to_sm[i] < to_ssm[i] + 4.0 * se,
            "rescaled CNCE gradient is {} from exact SM at v {}",
            to_sm[i],
            scales[i]
        );
    }
    assert!(
        (ssm_value - sm_value).abs() < 0.2 * sm_value.abs(),
        "SSM value {ssm_value}, SM {sm_value}"
    );
}

#[test]
fn conditional_nce_config_is_validated_and_strict() {
    for (v, kappa) in [
        (0.0, 1),
        (-0.1, 1),
        (f64::NAN, 1),
        (f64::INFINITY, 1),
        (0.1, 0),
    ] {
        let config = ConditionalNceConfig {
            noise_scale: v,
            n_noise: kappa,
        };
        assert!(
            ConditionalNce::new(config).is_err(),
            "accepted v = {v}, n_noise = {kappa}"
        );
    }
    let defaults: ConditionalNceConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(defaults, ConditionalNceConfig::default());
    assert!(ConditionalNce::new(defaults).is_ok());
    let typo = serde_json::from_str::<ConditionalNceConfig>(r#"{"noise_sclae": 0.2}"#);
    assert!(typo.is_err(), "an unknown field was accepted");
}

#[test]
fn conditional_nce_step_is_log_two_at_chance_and_reports_metrics() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = data(50, &mut rng);
    let config = ConditionalNceConfig {
        noise_scale: 0.3,
        n_noise: 3,
    };
    let mut cnce = ConditionalNce::new(config).unwrap();

    // A constant energy cannot tell a pair apart: every logit is 0, L = log 2 exactly.
    let flat = |t: &Tensor<f64>| t.sum_axes(&[1], false).mul_scalar(0.0);
    let out = cnce.step(&flat, &x, &mut rng).unwrap();
    assert!((out.loss.item() - std::f64::consts::LN_2).abs() < 1e-12);
    assert_eq!(out.metrics.get("accuracy"), Some(0.0));

    // A real model: the metrics agree with the loss and the data's energies, and the loss has
    // a finite, non-zero gradient in the parameters.
    let m = model();
    let out = cnce.step(&m, &x, &mut rng).unwrap();
    let loss = out.metrics.get("loss").unwrap();
    assert_eq!(loss, out.loss.item());
    let acc = out.metrics.get("accuracy").unwrap();
    assert!((0.0..=1.0).contains(&acc));
    let e_data = out.metrics.get("energy_data").unwrap();
    let expected_e_data = m.energy(&x).mean().item();
    assert!(
        (e_data - expected_e_data).abs() < 1e-12,
        "energy_data is over the data, repeated"
    );
    assert!(out.metrics.get("energy_noise").is_some());
    let g = flat_grad(&m, &out.loss);
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|v| *v != 0.0));
}

/// Mean [1, -1, 0.5]; variances 1, 1.5, 2; correlations 0.5 (x0, x1) and -0.3 (x1, x2).
fn truth3() -> (Vec<f64>, Vec<f64>) {
    let (s0, s1, s2) = (1.0f64, 1.5f64.sqrt(), 2.0f64.sqrt());
    let (c01, c12) = (0.5 * s0 * s1, -0.3 * s1 * s2);
    let cov = vec![1.0, c01, 0.0, c01, 1.5, c12, 0.0, c12, 2.0];
    (vec![1.0, -1.0, 0.5], cov)
}

#[test]
fn conditional_nce_recovers_gaussian_mean_and_covariance() {
    use ebm_nn::{Adam, AdamConfig, Optimizer};
    use rand::RngExt;
    let mut rng = StdRng::seed_from_u64(5);
    let (mean, cov) = truth3();
    let truth = GaussianEnergy::<f64>::from_mean_covariance(
        &Tensor::from_f64s(&mean, [3]),
        &Tensor::from_f64s(&cov, [3, 3]),
    )
    .unwrap();
    let n_data = 8000;
    let data = truth.sample(n_data, &mut rng);

    // v = 0.5 (half the smallest standard deviation: pairs neither trivial nor at chance),
    // 4 noisy copies per point. Seeds 5..9 gave errors up to 0.056 (mean) and 0.125
    // (covariance).
    let config = ConditionalNceConfig {
        noise_scale: 0.5,
        n_noise: 4,
    };
    let mut cnce = ConditionalNce::new(config).unwrap();
    let mut m = GaussianEnergy::<f64>::new(3).unwrap();
    let mut opt = Adam::new(AdamConfig {
        lr: 0.03,
        ..AdamConfig::default()
    })
    .unwrap();
    let steps = 1500;
    for step in 0..steps {
        if step == 2 * steps / 3 {
            opt.set_lr(0.003);
        }
        let rows: Vec<usize> = (0..256).map(|_| rng.random_range(0..n_data)).collect();
        let batch = data.index_select(0, &rows);
        let out = cnce.step(&m, &batch, &mut rng).unwrap();
        let grads = m.params().backward(&out.loss).unwrap();
        opt.step(m.params_mut(), &grads);
    }

    // Tolerances as for NCE: the data's own moments have standard errors <= 0.016 (mean) and
    // 0.032 (covariance) at n = 8000; CNCE is consistent for any v (Ceylan & Gutmann, theorem
    // 1) but less efficient than maximum likelihood (a few times the variance), and the last
    // minibatches add a little. 0.1 and 0.2 are about 3 standard errors after tripling the
    // variance, while an unconverged run (mean 0, covariance I) misses by > 0.5.
    for (i, (a, b)) in m.mean().to_f64s().iter().zip(&mean).enumerate() {
        assert!((a - b).abs() < 0.1, "mean[{i}]: learned {a}, true {b}");
    }
    for (k, (a, b)) in m.covariance().to_f64s().iter().zip(&cov).enumerate() {
        assert!(
            (a - b).abs() < 0.2,
            "cov[{}][{}]: learned {a}, true {b}",
            k / 3,
            k % 3
        );
    }
}
