//! Real NVP: invertibility, the exact log-determinant against a finite-difference Jacobian,
//! derivatives of log q against finite differences, normalisation by quadrature, and a
//! maximum-likelihood fit that recovers a correlated Gaussian.

use ebm_nn::{
    Activation, Adam, AdamConfig, CouplingMask, Optimizer, ParamStore, RealNvp, RealNvpConfig,
};
use ebm_tensor::Tensor;
use ebm_tensor::check::{CheckOptions, check_gradients};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A flow whose every tensor is random (the conditioners' last layers too, which start at
/// zero), N(0, scale^2), so that each coupling scales and shifts by amounts of order 1.
fn random_flow(config: &RealNvpConfig, seed: u64, scale: f64) -> (RealNvp, ParamStore<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let flow = RealNvp::new(&mut store, "flow", config, &mut rng).unwrap();
    let names: Vec<String> = store.names().into_iter().map(String::from).collect();
    for name in names {
        let t = store.expect(&name);
        let noise = Tensor::<f64>::randn(t.shape().clone(), &mut rng).mul_scalar(scale);
        store.set(&name, noise).unwrap();
    }
    (flow, store)
}

fn small(dim: usize, mask: CouplingMask) -> RealNvpConfig {
    RealNvpConfig {
        dim,
        n_couplings: 4,
        hidden: vec![6, 5],
        activation: Activation::Silu,
        mask,
        log_scale_bound: 2.0,
    }
}

#[test]
fn forward_and_inverse_undo_each_other() {
    for (dim, mask) in [(2, CouplingMask::Parity), (5, CouplingMask::Halves)] {
        let (flow, store) = random_flow(&small(dim, mask), 1, 0.5);
        let z = Tensor::<f64>::randn([50, dim], &mut StdRng::seed_from_u64(2));
        let (x, log_det) = flow.forward(&store, &z);
        let (back, inv_log_det) = flow.inverse(&store, &x);

        // Four affine maps with scales within e^+-2 on values of order 1-10: each step loses a
        // few ulps, so 1e-12 is far above rounding and far below any error of the algebra.
        for (a, b) in back.to_f64s().iter().zip(z.to_f64s()) {
            assert!((a - b).abs() < 1e-12, "d {dim}: {a} vs {b}");
        }
        for (a, b) in log_det.to_f64s().iter().zip(inv_log_det.to_f64s()) {
            assert!((a + b).abs() < 1e-12, "d {dim}: {a} vs {b}");
        }
        assert!(
            log_det.to_f64s().iter().any(|v| v.abs() > 0.1),
            "a non-trivial map"
        );
    }
}

/// log |det| of a square matrix (row-major) by Gaussian elimination with partial pivoting.
fn log_abs_det(mut m: Vec<f64>, d: usize) -> f64 {
    let mut total = 0.0;
    for col in 0..d {
        let pivot = (col..d)
            .max_by(|&a, &b| m[a * d + col].abs().total_cmp(&m[b * d + col].abs()))
            .unwrap();
        for j in 0..d {
            m.swap(col * d + j, pivot * d + j);
        }
        let p = m[col * d + col];
        total += p.abs().ln();
        for row in col + 1..d {
            let f = m[row * d + col] / p;
            for j in col..d {
                m[row * d + j] -= f * m[col * d + j];
            }
        }
    }
    total
}

#[test]
fn log_det_is_that_of_the_finite_difference_jacobian() {
    for (dim, mask) in [
        (2, CouplingMask::Parity),
        (3, CouplingMask::Parity),
        (4, CouplingMask::Halves),
    ] {
        let (flow, store) = random_flow(&small(dim, mask), 3, 0.5);
        let z = Tensor::<f64>::randn([6, dim], &mut StdRng::seed_from_u64(4));
        let log_det = flow.forward(&store, &z).1.to_f64s();
        let eps = 1e-5;
        for (i, row) in z.to_f64s().chunks(dim).enumerate() {
            // Column j of J: (g(z + eps e_j) - g(z - eps e_j)) / (2 eps).
            let mut jac = vec![0.0; dim * dim];
            for j in 0..dim {
                let mut plus = row.to_vec();
                let mut minus = row.to_vec();
                plus[j] += eps;
                minus[j] -= eps;
                let gp = flow
                    .forward(&store, &Tensor::from_f64s(&plus, [1, dim]))
                    .0
                    .to_f64s();
                let gm = flow
                    .forward(&store, &Tensor::from_f64s(&minus, [1, dim]))
                    .0
                    .to_f64s();
                for k in 0..dim {
                    jac[k * dim + j] = (gp[k] - gm[k]) / (2.0 * eps);
                }
            }

            // Each Jacobian entry errs by eps^2 |g'''| / 6 + 1e-16 |g| / eps, about 1e-10
            // here; the determinant of a well-conditioned 2-4 dimensional matrix keeps that
            // relative size, so 1e-7 on log |det| leaves a margin of 1000 and still catches a
            // missing or wrong log-scale term (of order 0.1-1).
            let numeric = log_abs_det(jac, dim);
            assert!(
                (numeric - log_det[i]).abs() < 1e-7,
                "d {dim}, sample {i}: finite differences {numeric}, flow {}",
                log_det[i]
            );
        }
    }
}

#[test]
fn log_prob_derivatives_in_x_and_parameters_match_finite_differences() {
    // check_gradients' defaults (eps 1e-6, atol 1e-6, rtol 1e-5) are four orders above the
    // error of a correct central difference for values of order 1-10 (its docs give the
    // budget), and far below the error of a wrong derivative rule.
    let (flow, store) = random_flow(&small(3, CouplingMask::Parity), 5, 0.5);
    let x = Tensor::<f64>::randn([4, 3], &mut StdRng::seed_from_u64(6));
    let options = CheckOptions::default();

    // Order 2 in x: the score of q and its derivative.
    check_gradients(
        &|v| flow.log_prob(&store, &v[0]),
        std::slice::from_ref(&x),
        2,
        &options,
    )
    .unwrap();

    // Orders 1 and 2 in (x, W) for a weight and a bias of the first and last couplings: the
    // second order is d/dW of grad_x log q.
    for name in [
        "flow.0.0.weight",
        "flow.0.2.bias",
        "flow.3.1.weight",
        "flow.3.2.weight",
    ] {
        let w = store.expect(name).detach();
        let f = |v: &[Tensor<f64>]| {
            let mut params = store.clone();
            *params.get_mut(name).unwrap() = v[1].clone();
            flow.log_prob(&params, &v[0])
        };
        check_gradients(&f, &[x.clone(), w], 2, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    // The reparameterised samples and their log-density, first order in a weight.
    let w = store.expect("flow.1.2.weight").detach();
    let f = |v: &[Tensor<f64>]| {
        let mut params = store.clone();
        *params.get_mut("flow.1.2.weight").unwrap() = v[0].clone();
        let (x, log_q) = flow.sample_with_log_prob(&params, 3, &mut StdRng::seed_from_u64(7));
        Tensor::concat(&[x.reshape([9]), log_q], 0)
    };
    check_gradients(&f, &[w], 1, &options).unwrap();
}

#[test]
fn the_two_dimensional_density_integrates_to_one() {
    // Weights of scale 0.3: shifts t grow linearly in x (SiLU), so larger weights give tails
    // that reach past any small box.
    let (flow, store) = random_flow(&small(2, CouplingMask::Parity), 8, 0.3);

    // Midpoint rule on [-16, 16]^2 with h = 0.08.
    let (half_width, n) = (16.0, 400);
    let h = 2.0 * half_width / n as f64;
    let mut grid = Vec::with_capacity(2 * n * n);
    for i in 0..n {
        for j in 0..n {
            grid.push(-half_width + (i as f64 + 0.5) * h);
            grid.push(-half_width + (j as f64 + 0.5) * h);
        }
    }
    let log_q = flow.log_prob(&store, &Tensor::from_f64s(&grid, [n * n, 2]));
    let mass: f64 = log_q.to_f64s().iter().map(|l| l.exp()).sum::<f64>() * h * h;

    // The midpoint rule on a smooth density that decays fast converges faster than any power
    // of h (the Euler-Maclaurin terms vanish with the density at the edges): measured
    // 1 - 1.1e-12 with h = 0.08 and h = 0.04 alike, and the mass beyond the box is of the
    // same order (none of 10,000 draws comes within 6 of its edge). 1e-8 leaves room for
    // rounding in 160,000 terms and still catches a log-determinant off by 1e-8 anywhere.
    assert!(
        (mass - 1.0).abs() < 1e-8,
        "integral of q on the grid: {mass}"
    );

    // The density is far from the base N(0, I), and its draws stay inside the box.
    let base = ebm_nn::standard_normal_log_prob(&Tensor::<f64>::from_f64s(&grid, [n * n, 2]));
    let gap = log_q
        .to_f64s()
        .iter()
        .zip(base.to_f64s())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(gap > 1.0, "a non-trivial flow: max |log q - log N| = {gap}");
    let x = flow
        .sample(&store, 10_000, &mut StdRng::seed_from_u64(9))
        .to_f64s();
    assert!(x.iter().all(|v| v.abs() < half_width - 6.0));
}

#[test]
fn maximum_likelihood_recovers_a_correlated_gaussian() {
    let mut rng = StdRng::seed_from_u64(10);

    // Data: N(mu, Sigma), mu = [1, -0.5], Sigma = [[1, 0.6], [0.6, 0.5]] (correlation 0.85),
    // drawn as mu + A z with A the Cholesky factor.
    let (mean, cov): ([f64; 2], [f64; 4]) = ([1.0, -0.5], [1.0, 0.6, 0.6, 0.5]);
    let a11 = (cov[3] - cov[1] * cov[1]).sqrt();
    let n_data = 4000;
    let z = Tensor::<f64>::randn([n_data, 2], &mut rng).to_f64s();
    let data: Vec<f64> = z
        .chunks(2)
        .flat_map(|z| [mean[0] + z[0], mean[1] + cov[1] * z[0] + a11 * z[1]])
        .collect();
    let data = Tensor::<f64>::from_f64s(&data, [n_data, 2]);

    let config = RealNvpConfig {
        n_couplings: 4,
        hidden: vec![16, 16],
        ..RealNvpConfig::default()
    };
    let mut store = ParamStore::new();
    let flow = RealNvp::new(&mut store, "flow", &config, &mut rng).unwrap();
    let mut adam = Adam::new(AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    })
    .unwrap();

    // Minibatch maximum likelihood: minimise -mean log q(x).
    let steps = 1500;
    for step in 0..steps {
        if step == 2 * steps / 3 {
            adam.set_lr(1e-3);
        }
        use rand::RngExt;
        let rows: Vec<usize> = (0..256).map(|_| rng.random_range(0..n_data)).collect();
        let batch = data.index_select(0, &rows);
        let loss = -flow.log_prob(&store, &batch).mean();
        let grads = store.backward(&loss).unwrap();
        adam.step(&mut store, &grads);
    }

    // Moments of 40,000 draws of the fitted flow.
    let m = 40_000;
    let x = flow.sample(&store, m, &mut rng).to_f64s();
    let mu: Vec<f64> = (0..2)
        .map(|j| x.chunks(2).map(|r| r[j]).sum::<f64>() / m as f64)
        .collect();
    let mut sigma = [0.0; 4];
    for r in x.chunks(2) {
        for i in 0..2 {
            for j in 0..2 {
                sigma[i * 2 + j] += (r[i] - mu[i]) * (r[j] - mu[j]) / (m - 1) as f64;
            }
        }
    }

    // Tolerances: the data's own sample mean has standard error sqrt(1 / 4000) = 0.016 and a
    // covariance entry at most sqrt(2 / 4000) = 0.022; the draws add 0.005 and 0.007. A flow
    // fitted by minibatch Adam adds its optimisation error: 0.06 for the mean and 0.08 for the
    // covariance are about 3.5 of the combined standard errors, while the untrained flow
    // (N(0, I)) misses the mean by 1 and the covariance by 0.6.
    for i in 0..2 {
        assert!(
            (mu[i] - mean[i]).abs() < 0.06,
            "mean[{i}]: {} vs {}",
            mu[i],
            mean[i]
        );
    }
    for k in 0..4 {
        assert!(
            (sigma[k] - cov[k]).abs() < 0.08,
            "cov {k}: {} vs {}",
            sigma[k],
            cov[k]
        );
    }

    // The fitted log-likelihood of the data against the truth's: the true log-density's mean
    // over the data is -(log 2 pi + 1/2 log det Sigma + 1) up to its sampling error (0.016
    // for 4000 draws of a chi-square / 2 with 2 degrees of freedom); a flow this close should
    // be within 0.03 nats of it (an overfitting flow would be above, a poor fit below).
    let det: f64 = cov[0] * cov[3] - cov[1] * cov[2];
    let true_ll = -(std::f64::consts::TAU.ln() + 0.5 * det.ln() + 1.0);
    let fitted_ll = flow.log_prob(&store, &data).mean().item();
    assert!(
        (fitted_ll - true_ll).abs() < 0.03,
        "log-likelihood {fitted_ll} vs {true_ll}"
    );
}
