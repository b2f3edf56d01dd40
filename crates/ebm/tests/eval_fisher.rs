//! The Fisher divergence between two Gaussians against its closed form.

use ebm::energy::GaussianEnergy;
use ebm::eval::fisher_divergence;
use ebm_tensor::Tensor;
use rand::SeedableRng;

#[test]
fn fisher_divergence_between_two_gaussians_matches_the_closed_form() {
    // p = N(mu_p, S_p), q = N(mu_q, S_q) with precisions P_p, P_q. For x = mu_p + e, e ~ N(0,
    // S_p): s_q - s_p = (P_p - P_q) e - P_q (mu_p - mu_q), so
    // F = tr((P_q - P_p) S_p (P_q - P_p)) + |P_q (mu_p - mu_q)|^2.
    // Diagonal covariances keep the closed form short: S_p = diag(1, 0.5), S_q = diag(2, 1).
    let p = GaussianEnergy::<f64>::from_mean_covariance(
        &Tensor::from_f64s(&[0.0, 1.0], [2]),
        &Tensor::from_f64s(&[1.0, 0.0, 0.0, 0.5], [2, 2]),
    )
    .unwrap();
    let q = GaussianEnergy::<f64>::from_mean_covariance(
        &Tensor::from_f64s(&[1.0, 0.0], [2]),
        &Tensor::from_f64s(&[2.0, 0.0, 0.0, 1.0], [2, 2]),
    )
    .unwrap();
    let (sp, pp, pq): ([f64; 2], [f64; 2], [f64; 2]) = ([1.0, 0.5], [1.0, 2.0], [0.5, 1.0]);
    let dmu: [f64; 2] = [-1.0, 1.0];
    let exact: f64 = (0..2)
        .map(|i| (pq[i] - pp[i]).powi(2) * sp[i] + (pq[i] * dmu[i]).powi(2))
        .sum();

    // 20,000 exact draws of p: the estimate is a sample mean, within 4 of its reported
    // standard errors of the closed form (a 4-sigma bound on a CLT mean).
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let x = p.sample(20_000, &mut rng);
    let f = fisher_divergence(&q, &p, &x).unwrap();
    assert!(
        (f.value - exact).abs() < 4.0 * f.standard_error,
        "{f:?} vs {exact}"
    );
    assert!(f.standard_error < 0.02 * exact);

    // A model equal to the target has divergence 0 exactly.
    let zero = fisher_divergence(&p, &p, &x).unwrap();
    assert!(zero.value.abs() < 1e-20);
}
