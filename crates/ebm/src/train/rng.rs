//! Randomness as a pure function of (seed, step), so that a run resumed from a checkpoint
//! draws exactly what the uninterrupted run would have drawn.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// The random generator of training step `step` of a run seeded with `seed`.
///
/// Step 0 is the setup (initial weights, whatever a method fits to the data); training steps
/// count from 1, as [`super::Trainer::steps`] does. The generator is `StdRng` keyed by the
/// 32 bytes `seed || step || tag` (little-endian), so every (seed, step) pair has its own
/// stream, and drawing more or fewer values at one step leaves the next step's unchanged.
///
/// With this, a step's randomness needs no state: resuming a run needs only the step count,
/// the weights, the optimisers' state and the objective's state (chains, replay buffer).
///
/// `StdRng`'s algorithm may change between major versions of `rand`: resume a run with the
/// build that started it.
///
/// # Example
/// ```
/// use ebm::train::step_rng;
/// use rand::RngExt;
///
/// let a: f64 = step_rng(7, 3).random();
/// let b: f64 = step_rng(7, 3).random();
/// let c: f64 = step_rng(7, 4).random();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
pub fn step_rng(seed: u64, step: u64) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&step.to_le_bytes());
    key[16..].copy_from_slice(b"ebm.train.step16");
    StdRng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_differ_by_seed_and_by_step() {
        let draw = |seed, step| step_rng(seed, step).random::<u64>();
        assert_eq!(draw(1, 2), draw(1, 2));
        assert_ne!(draw(1, 2), draw(2, 1));
        assert_ne!(draw(1, 2), draw(1, 3));
        assert_ne!(draw(0, 0), draw(0, 1));
    }
}
