//! MMD between sample sets: about 0 for one distribution, clearly positive for shifted ones.

use ebm::eval::{MmdBandwidth, mmd_squared};
use ebm_tensor::Tensor;
use rand::SeedableRng;

#[test]
fn mmd_is_zero_within_its_error_for_one_distribution_and_positive_for_shifted_ones() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);

    // Two draws of one distribution, 50 times: the estimates scatter around 0 with a spread
    // that the reported standard error should match in order (it is a conservative plug-in).
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..50 {
        let x = Tensor::<f64>::randn([300, 3], &mut rng);
        let y = Tensor::<f64>::randn([300, 3], &mut rng);
        let mmd = mmd_squared(&x, &y, MmdBandwidth::Median).unwrap();
        values.push(mmd.mmd2);
        errors.push(mmd.standard_error);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let spread = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let mean_error = errors.iter().sum::<f64>() / n;
    println!("null: mean {mean:e}, spread {spread:e}, mean reported error {mean_error:e}");

    // Unbiased: the mean of 50 estimates is within 4 of its standard errors (spread / sqrt 50)
    // of 0. Every single estimate is within 4 of its own standard errors of 0.
    assert!(
        mean.abs() < 4.0 * spread / n.sqrt(),
        "mean {mean}, spread {spread}"
    );
    for (v, e) in values.iter().zip(&errors) {
        assert!(v.abs() < 4.0 * e, "MMD^2 {v} with standard error {e}");
    }
    // The reported error is of the right size: between 0.7 and 3 times the spread (the
    // spread of 50 draws is itself uncertain by about 10%).
    assert!(mean_error > 0.7 * spread && mean_error < 3.0 * spread);

    // Measured (seed 5): spread 1.56e-3, mean reported error 2.21e-3 (1.4 times).

    // A shift of 1 (one sd) in one coordinate: MMD^2 well above 0 (measured 0.072 with
    // standard error 0.0126, 5.8 of them; 4 leaves room for another seed).
    let x = Tensor::<f64>::randn([300, 3], &mut rng);
    let shift = Tensor::from_f64s(&[1.0, 0.0, 0.0], [1, 3]);
    let y = &Tensor::<f64>::randn([300, 3], &mut rng) + &shift;
    let mmd = mmd_squared(&x, &y, MmdBandwidth::Median).unwrap();
    println!("shifted: {mmd:?}");
    assert!(mmd.mmd2 > 4.0 * mmd.standard_error, "{mmd:?}");
}

#[test]
fn mmd_refuses_mismatched_sets_and_bad_bandwidths() {
    let x = Tensor::<f64>::zeros([4, 2]);
    let y = Tensor::<f64>::zeros([4, 3]);
    assert!(mmd_squared(&x, &y, MmdBandwidth::Median).is_err());
    let y = Tensor::<f64>::ones([4, 2]);
    assert!(mmd_squared(&x, &y, MmdBandwidth::Fixed(0.0)).is_err());
    assert!(mmd_squared(&x, &y, MmdBandwidth::Fixed(1.0)).is_ok());
}
