//! One denoising score-matching step for an MLP energy 2-128-128-1 (SiLU), timed: the
//! `dsm-mlp` workload of the benchmarks, written with the tensor crate alone.
//!
//! Run with `cargo run --release -p ebm-tensor --example dsm_step`.

use ebm_tensor::Tensor;
use ebm_tensor::autodiff::{GradOptions, grad, no_grad};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Instant;

fn main() {
    // Run on a pool thread: parallel kernels then split work with `join` instead of injecting
    // jobs from outside the pool and blocking on a latch.
    ebm_tensor::with_threads(2, run);
}

fn run() {
    let mut rng = StdRng::seed_from_u64(0);
    let widths = [2usize, 128, 128, 1];
    let mut params: Vec<Tensor<f32>> = Vec::new();
    for w in widths.windows(2) {
        let bound = 1.0 / (w[0] as f64).sqrt();
        params.push(
            Tensor::rand_uniform([w[0], w[1]], -bound, bound, &mut rng).set_requires_grad(true),
        );
        params.push(Tensor::rand_uniform([w[1]], -bound, bound, &mut rng).set_requires_grad(true));
    }
    let (n, sigma) = (256, 0.1);
    let steps = 300;
    let mut times = Vec::new();
    for step in 0..steps {
        let start = Instant::now();
        let x = Tensor::<f32>::randn([n, 2], &mut rng).mul_scalar(2.0);
        let z = Tensor::<f32>::randn([n, 2], &mut rng);
        let noisy = (&x + &z.mul_scalar(sigma)).set_requires_grad(true);

        let mut h = noisy.clone();
        for (i, pair) in params.chunks(2).enumerate() {
            h = &h.matmul(&pair[0]) + &pair[1];
            if i + 1 < params.len() / 2 {
                h = h.silu();
            }
        }
        let energy = h.sum();
        let gx = grad(
            &[energy],
            std::slice::from_ref(&noisy),
            None,
            GradOptions::create_graph(),
        )
        .unwrap();
        let score = -&gx[0];
        let loss = (&score + &z.mul_scalar(1.0 / sigma))
            .square()
            .sum_axes(&[1], false)
            .mean()
            * 0.5;
        let grads = grad(
            std::slice::from_ref(&loss),
            &params,
            None,
            GradOptions::default().allow_unused(true),
        )
        .unwrap();
        no_grad(|| {
            for (p, g) in params.iter_mut().zip(&grads) {
                let g = g.data();
                p.update_(|d| d.iter_mut().zip(g).for_each(|(v, &gi)| *v -= 1e-3 * gi));
            }
        });
        if step >= 20 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        if step % 100 == 0 {
            eprintln!("step {step} loss {:.4}", loss.item());
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "median {:.3} ms/step, p10 {:.3}, p90 {:.3}",
        times[times.len() / 2],
        times[times.len() / 10],
        times[times.len() * 9 / 10]
    );
}
