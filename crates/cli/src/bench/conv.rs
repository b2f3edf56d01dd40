//! The `dsm-conv` workload: denoising score matching of the library's convolutional energy
//! on Fashion-MNIST images (BENCH.md).
//!
//! The energy is `ConvEnergyConfig::bench()`: conv3x3(1->32, pad 1) SiLU, conv3x3(32->64,
//! stride 2, pad 1) SiLU, conv3x3(64->64, stride 2, pad 1) SiLU, flatten, linear(3136->1),
//! initialised as PyTorch does. A step draws 64 training images scaled to [0, 1] (uniform
//! random images where the set is not installed, as the peers do, with a note on stderr) and
//! their Gaussian noise, computes the loss `0.5 mean ||s(x + sigma z) + z / sigma||^2` with
//! `s = -grad_x E` and sigma 0.1, its parameter gradients, and an Adam update (lr 1e-3).

use super::Built;
use ebm::data::{Dataset, FASHION_MNIST_DIR, ImageTransform, Split};
use ebm::energy::{ConvEnergy, ConvEnergyConfig, Energy, EnergyModel};
use ebm::objective::score_matching::denoising_score_matching_with_noise;
use ebm_nn::{Adam, AdamConfig, Optimizer, sharded_backward};
use ebm_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::ops::Range;

const BATCH: usize = 64;
const SIGMA: f64 = 0.1;
/// Samples per shard of the data-parallel step (`ebm_nn::sharded_backward`): two shards of
/// 32, one per thread, each running its convolutions on one thread.
const SHARD: usize = 32;
/// Random images drawn where Fashion-MNIST is absent (as many as its training part).
const RANDOM_IMAGES: usize = 60_000;

/// Where a step's images come from.
enum Images {
    /// Fashion-MNIST's training part, scaled to [0, 1].
    Fashion(Dataset),
    /// Uniform random images `[60000, 1, 28, 28]`, drawn once.
    Random(Tensor<f32>),
}

impl Images {
    /// Fashion-MNIST when installed, else random images (with a note on stderr).
    fn load(rng: &mut StdRng) -> Images {
        match Dataset::fashion_mnist(Split::Train) {
            Ok(set) => {
                let set = set
                    .with_transform(ImageTransform::unit())
                    .expect("Fashion-MNIST images take the [0, 1] scaling");
                Images::Fashion(set)
            }
            Err(err) => {
                eprintln!(
                    "note: Fashion-MNIST not found in {FASHION_MNIST_DIR} ({err}); using random \
                     uniform images instead"
                );
                Images::Random(Tensor::rand_uniform(
                    [RANDOM_IMAGES, 1, 28, 28],
                    0.0,
                    1.0,
                    rng,
                ))
            }
        }
    }

    /// The name of the source, as the peers report it.
    fn source(&self) -> &'static str {
        match self {
            Images::Fashion(_) => "fashion-mnist",
            Images::Random(_) => "uniform-random",
        }
    }

    /// `n` images `[n, 1, 28, 28]` drawn at random.
    fn batch(&self, n: usize, rng: &mut StdRng) -> Tensor<f32> {
        match self {
            Images::Fashion(set) => set.batch(n, rng),
            Images::Random(all) => {
                let rows = rand::seq::index::sample(rng, all.dim(0), n).into_vec();
                all.index_select(0, &rows)
            }
        }
    }
}

/// A `dsm-conv` step: fresh images and noise, the denoising score-matching loss and its
/// gradients in two shards, and an Adam update. Returns the loss.
pub(crate) fn dsm_conv(seed: u64) -> Built {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = ConvEnergy::<f32>::new(ConvEnergyConfig::bench(), &mut rng)
        .expect("the benchmark convnet is valid");
    let images = Images::load(&mut rng);
    let data = images.source();
    let mut adam = Adam::new(AdamConfig {
        lr: 1e-3,
        ..AdamConfig::default()
    })
    .expect("valid Adam");

    let step = move || {
        // The step's randomness for the whole batch, drawn before the batch is split.
        let x = images.batch(BATCH, &mut rng);
        let noise = Tensor::<f32>::randn(x.dims(), &mut rng);

        let energy = |x: &Tensor<f32>| model.energy(x);
        let shard_loss = |r: Range<usize>| {
            let x = x.narrow(0, r.start, r.len());
            let noise = noise.narrow(0, r.start, r.len());
            denoising_score_matching_with_noise(&energy, &x, &noise, SIGMA)
        };
        let (value, grads) = sharded_backward(model.params(), BATCH, SHARD, shard_loss)
            .expect("the denoising loss of a convnet is differentiable");
        adam.step(model.params_mut(), &grads);
        value
    };
    Built {
        step: Box::new(step),
        data,
    }
}
