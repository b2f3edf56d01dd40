//! The memory of a training loop that differentiates a gradient: the graph of every step must
//! be freed, so resident memory stays flat however long the loop runs.
//!
//! The 100,000-step test is ignored by default; run it with
//! `cargo test -p ebm-tensor --release --test memory -- --ignored --nocapture`.

use ebm_tensor::Tensor;
use ebm_tensor::autodiff::{GradOptions, grad};
use rand::SeedableRng;
use std::slice::from_ref;
use std::sync::Mutex;

/// Held by the tests that read the resident memory, so that the readings of one never include
/// the allocations of another.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy_lock() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resident memory of this process in bytes, from /proc/self/statm (pages) and the page size
/// that the kernel passed in the auxiliary vector.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * page_size()
}

/// The page size, from the AT_PAGESZ entry of /proc/self/auxv (pairs of native words).
fn page_size() -> u64 {
    const AT_PAGESZ: usize = 6;
    let auxv = std::fs::read("/proc/self/auxv").expect("/proc/self/auxv");
    let words: Vec<usize> = auxv
        .chunks_exact(size_of::<usize>())
        .map(|c| usize::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let entry = words.chunks_exact(2).find(|kv| kv[0] == AT_PAGESZ);
    entry.expect("AT_PAGESZ in the auxiliary vector")[1] as u64
}

/// A 2-32-32-1 SiLU energy trained by denoising score matching with plain SGD, in f32.
struct DsmRun {
    params: Vec<Tensor<f32>>,
    rng: rand::rngs::StdRng,
}

impl DsmRun {
    fn new() -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(41);
        let mut params = Vec::new();
        for w in [2usize, 32, 32, 1].windows(2) {
            let bound = 1.0 / (w[0] as f64).sqrt();
            params.push(Tensor::rand_uniform([w[0], w[1]], -bound, bound, &mut rng));
            params.push(Tensor::rand_uniform([w[1]], -bound, bound, &mut rng));
        }
        let params = params
            .into_iter()
            .map(|p| p.set_requires_grad(true))
            .collect();
        DsmRun { params, rng }
    }

    /// One step; returns the loss. Every tensor of the graph is dropped before the update.
    fn step(&mut self) -> f64 {
        let (batch, sigma, lr) = (64, 0.1, 1e-4);
        let (loss, grads) = {
            let x = Tensor::<f32>::randn([batch, 2], &mut self.rng).mul_scalar(2.0);
            let z = Tensor::<f32>::randn([batch, 2], &mut self.rng);
            let noisy = (&x + &z.mul_scalar(sigma)).set_requires_grad(true);
            let mut h = noisy.clone();
            for (i, layer) in self.params.chunks(2).enumerate() {
                h = &h.matmul(&layer[0]) + &layer[1];
                if i < 2 {
                    h = h.silu();
                }
            }
            let options = GradOptions::create_graph();
            let score = -&grad(&[h.sum()], &[noisy], None, options).unwrap()[0];
            let residual = &score + &z.mul_scalar(1.0 / sigma);
            let loss = residual.square().sum_axes(&[1], false).mean() * 0.5;
            // The last bias does not change the score: allow_unused gives it a zero gradient.
            let options = GradOptions::default().allow_unused(true);
            let grads = grad(from_ref(&loss), &self.params, None, options);
            (loss.item(), grads.unwrap())
        };
        for (p, g) in self.params.iter_mut().zip(&grads) {
            let g = g.data();
            p.update_(|d| d.iter_mut().zip(g).for_each(|(v, &gi)| *v -= lr * gi));
        }
        loss
    }

    /// Runs `steps` steps, checking that every update was in place (so nothing outside the
    /// step still held a parameter: the graph was freed), and reading the resident memory every
    /// `every` steps.
    fn run(&mut self, steps: usize, every: usize) -> Vec<(usize, u64)> {
        let ids: Vec<u64> = self.params.iter().map(Tensor::id).collect();
        let mut readings = Vec::new();
        for step in 1..=steps {
            let loss = self.step();
            assert!(loss.is_finite(), "loss {loss} at step {step}");
            if step % every == 0 {
                let rss = resident_bytes();
                println!("step {step:>6}: loss {loss:10.4}, rss {:.2} MiB", mib(rss));
                readings.push((step, rss));
            }
        }
        let after: Vec<u64> = self.params.iter().map(Tensor::id).collect();
        assert_eq!(
            after, ids,
            "an update copied a parameter: the graph still held it"
        );
        readings
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[test]
fn memory_of_double_backward_training_is_released_every_step() {
    // `run` checks that every update was in place, which fails as soon as anything of a step's
    // graph survives the step (every recorded operation on a parameter holds it). The memory
    // bound is the backstop for a leak that holds no parameter: 16 MiB over the 1,750 steps
    // after the first reading catches any leak above 10 KiB a step (keeping the last layer's
    // graph leaks ~18 KiB), and leaves room for the small tests that run on other threads.
    //
    // The baseline is the lowest reading, not the first: memory that another test freed on
    // another thread can stay resident in that thread's arena until the allocator trims it, a
    // few hundred steps later.
    let _heavy = heavy_lock();
    let readings = DsmRun::new().run(2_000, 250);
    let lowest = readings.iter().map(|r| r.1).min().unwrap();
    let growth = readings.last().unwrap().1 - lowest;
    assert!(
        growth < 16 << 20,
        "resident memory grew by {:.1} MiB over 2,000 steps",
        mib(growth)
    );
}

#[test]
#[ignore = "100,000 training steps; run with --release -- --ignored memory --nocapture"]
fn memory_stays_flat_over_100k_double_backward_steps() {
    // Each step allocates and frees the same sizes, so after warm-up the allocator reuses its
    // chunks and the resident memory stays put. A leak of 100 bytes a step, less than one
    // tensor node, would add 8.6 MiB over the 90,000 steps measured: 8 MiB catches it.
    let _heavy = heavy_lock();
    let readings = DsmRun::new().run(100_000, 10_000);
    let (warm, last) = (readings[0].1, readings.last().unwrap().1);
    println!(
        "rss at step 10,000: {:.2} MiB; at step 100,000: {:.2} MiB",
        mib(warm),
        mib(last)
    );
    assert!(
        last <= warm + (8 << 20),
        "resident memory grew from {:.2} MiB to {:.2} MiB",
        mib(warm),
        mib(last)
    );
}
