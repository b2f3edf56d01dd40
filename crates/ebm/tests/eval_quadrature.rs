//! The quadrature normaliser and NLL against closed forms.

use ebm::energy::{GaussianEnergy, GaussianMixtureEnergy};
use ebm::eval::{QuadratureGrid, QuadratureRule, log_normalizer_quadrature, nll_quadrature};
use ebm_tensor::Tensor;
use rand::SeedableRng;

fn correlated_gaussian() -> GaussianEnergy<f64> {
    let mean = Tensor::from_f64s(&[0.5, -1.0], [2]);
    let cov = Tensor::from_f64s(&[1.0, 0.6, 0.6, 0.8], [2, 2]);
    GaussianEnergy::from_mean_covariance(&mean, &cov).unwrap()
}

#[test]
fn quadrature_log_z_of_a_2d_gaussian_matches_the_closed_form() {
    // [-8, 8]^2 holds the density to 1e-12 (the widest axis has sd 1, 7 sd from the mean);
    // with 400 points per axis (h = 0.04) both rules are exact far below 1e-6 for a Gaussian
    // (their error falls faster than any power of h for smooth, rapidly decaying integrands),
    // so 1e-6 is a bound with a wide margin that a wrong weight or offset (>= 1e-3) breaks.
    let gaussian = correlated_gaussian();
    for rule in [QuadratureRule::Midpoint, QuadratureRule::Trapezoid] {
        let grid = QuadratureGrid {
            rule,
            ..QuadratureGrid::square(2, -8.0, 8.0, 400)
        };
        let q = log_normalizer_quadrature(&gaussian, &grid).unwrap();
        assert!(
            (q.log_z - gaussian.log_normalizer()).abs() < 1e-6,
            "{rule:?}: {} vs {}",
            q.log_z,
            gaussian.log_normalizer()
        );
        assert!(q.border_mass_fraction < 1e-10);
        assert_eq!(q.n_points, 160_000);
    }
}

#[test]
fn quadrature_log_z_of_a_gaussian_mixture_is_zero() {
    // A normalised mixture has log Z = 0; its narrowest component (sd 0.3) spans 7.5 points
    // of h = 0.04 per sd, enough for 1e-6 as above.
    let weights = Tensor::<f64>::from_f64s(&[0.2, 0.5, 0.3], [3]);
    let means = Tensor::from_f64s(&[-2.0, 0.0, 1.0, 1.5, 2.0, -1.0], [3, 2]);
    let stds = Tensor::from_f64s(&[0.3, 0.7, 0.5], [3]);
    let gmm = GaussianMixtureEnergy::from_parts(&weights, &means, &stds).unwrap();
    let q = log_normalizer_quadrature(&gmm, &QuadratureGrid::square(2, -8.0, 8.0, 400)).unwrap();
    assert!(q.log_z.abs() < 1e-6, "log Z {}", q.log_z);
}

#[test]
fn quadrature_nll_of_a_gaussian_is_its_entropy() {
    // The mean NLL of exact samples estimates the entropy 0.5 ln det(2 pi e Sigma); its error
    // is the sampling error of the mean energy, whose standard error the result reports: the
    // difference must be within 4 of them.
    let gaussian = correlated_gaussian();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let x = gaussian.sample(20_000, &mut rng);
    let nll = nll_quadrature(&gaussian, &x, &QuadratureGrid::square(2, -8.0, 8.0, 400)).unwrap();
    let det: f64 = 1.0 * 0.8 - 0.36;
    let entropy = 0.5 * (2.0 * std::f64::consts::TAU.ln() + 2.0 + det.ln());
    assert!(
        (nll.nll - entropy).abs() < 4.0 * nll.standard_error,
        "NLL {} vs entropy {entropy} (se {})",
        nll.nll,
        nll.standard_error
    );

    // Data of the wrong dimension is refused.
    let x3 = Tensor::<f64>::zeros([4, 3]);
    assert!(nll_quadrature(&gaussian, &x3, &QuadratureGrid::default()).is_err());
}
