//! The README's example, as written there (keep the two in step).

use ebm::{data::toy2d::eight_gaussians, objective::score_matching::denoising_score_matching};
use ebm_nn::{Activation, Mlp, Module, ParamStore};
use rand::SeedableRng;

#[test]
fn readme_score_matching_example_runs() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut store = ParamStore::<f32>::new();
    let mlp = Mlp::new(
        &mut store,
        "energy",
        &[2, 128, 128, 1],
        Activation::Silu,
        &mut rng,
    )?;
    let energy = |x: &ebm_tensor::Tensor<f32>| mlp.forward(&store, x).reshape([x.dim(0)]);
    let x = eight_gaussians::<f32, _>(256, &mut rng);
    let loss = denoising_score_matching(&energy, &x, 0.1, &mut rng)?; // 0.5 E||s(x~) + z/sigma||^2
    let grads = store.backward(&loss)?; // d loss / d weights

    // The output layer's bias does not move the score, so the loss does not reach it; every
    // other parameter gets a finite, nonzero gradient.
    assert!(loss.item().is_finite());
    for (name, g) in grads.iter() {
        let Some(g) = g else {
            assert_eq!(name, "energy.2.bias");
            continue;
        };
        let g = g.to_f64s();
        assert!(
            g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0),
            "{name}"
        );
    }
    Ok(())
}
