//! Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

use super::slots::{Layout, Slots};
use super::{Optimizer, check_grads, check_lr, non_negative, positive, unit_interval};
use crate::{NnError, ParamGrads, ParamStore, StateDict};
use ebm_tensor::Float;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of [`Sgd`], as `torch.optim.SGD`'s arguments.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate (finite, > 0).
    pub lr: f64,
    /// Momentum factor, in [0, 1); 0 turns momentum off.
    pub momentum: f64,
    /// Dampening of the gradient in the momentum average, in [0, 1).
    pub dampening: f64,
    /// L2 penalty added to the gradient as `weight_decay * p` (finite, >= 0).
    pub weight_decay: f64,
    /// Nesterov momentum (needs momentum > 0 and no dampening).
    pub nesterov: bool,
}

impl Default for SgdConfig {
    /// lr 1e-3 and nothing else, as PyTorch.
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] naming the first setting out of range, or Nesterov without
    /// momentum or with dampening.
    pub fn validate(&self) -> Result<(), NnError> {
        positive("SGD lr", self.lr)?;
        unit_interval("SGD momentum", self.momentum)?;
        unit_interval("SGD dampening", self.dampening)?;
        non_negative("SGD weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(NnError::config(
                "SGD nesterov",
                format!("momentum {}, dampening {}", self.momentum, self.dampening),
                "momentum > 0 and dampening 0 with Nesterov",
            ));
        }
        Ok(())
    }
}

const LAYOUT: Layout = Layout {
    kind: "sgd",
    slots: &["momentum_buffer"],
    counted: false,
};

/// Stochastic gradient descent, as `torch.optim.SGD`. For each parameter p with gradient g:
///
/// ```text
/// g = g + weight_decay p
/// b = g                                   (first step with momentum)
/// b = momentum b + (1 - dampening) g      (later steps)
/// g = g + momentum b   (Nesterov)   or   g = b   (plain momentum)
/// p = p - lr g
/// ```
///
/// Without momentum it keeps no state; with it, one buffer per parameter
/// (`momentum_buffer`).
///
/// # Example
/// ```
/// use ebm_nn::{Optimizer, ParamStore, Sgd, SgdConfig};
/// use ebm_tensor::Tensor;
///
/// let mut store = ParamStore::<f64>::new();
/// store.insert("x", Tensor::from_f64s(&[1.0], [1])).unwrap();
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.1, ..SgdConfig::default() }).unwrap();
/// let grads = store.backward(&store.expect("x").square().sum()).unwrap(); // 2 x
/// sgd.step(&mut store, &grads);
/// assert_eq!(store.expect("x").item(), 0.8);
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float = f32> {
    config: SgdConfig,
    steps: u64,
    state: BTreeMap<String, Slots<T>>,
}

impl<T: Float> Sgd<T> {
    /// An optimiser with the given settings and no state.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] as [`SgdConfig::validate`].
    pub fn new(config: SgdConfig) -> Result<Self, NnError> {
        config.validate()?;
        Ok(Sgd {
            config,
            steps: 0,
            state: BTreeMap::new(),
        })
    }

    /// The settings (with the current learning rate).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    #[track_caller]
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        check_grads(store, grads);
        let c = self.config;
        let (lr, mu) = (T::of(c.lr), T::of(c.momentum));
        let one_damp = T::of(1.0 - c.dampening);
        let wd = (c.weight_decay > 0.0).then(|| T::of(c.weight_decay));

        for ((name, p), g) in store.iter_mut().zip(&grads.grads) {
            let Some(g) = g else { continue };
            let g = g.data();
            let decayed = |g: T, p: T| match wd {
                Some(wd) => g + wd * p,
                None => g,
            };
            if c.momentum == 0.0 {
                p.update_(|p| {
                    for (p, &g) in p.iter_mut().zip(g) {
                        *p = *p - lr * decayed(g, *p);
                    }
                });
                continue;
            }

            // The first step copies the gradient into the buffer; later ones average into it.
            let first = !self.state.contains_key(name);
            let slots = self.state.entry(name.to_string()).or_insert_with(|| Slots {
                tensors: vec![p.zeros_like()],
                step: 0,
            });
            slots.tensors[0].update_(|b| {
                p.update_(|p| {
                    for ((p, b), &g) in p.iter_mut().zip(b.iter_mut()).zip(g) {
                        let g = decayed(g, *p);
                        *b = if first { g } else { mu * *b + one_damp * g };
                        let d = if c.nesterov { g + mu * *b } else { *b };
                        *p = *p - lr * d;
                    }
                })
            });
        }
        self.steps += 1;
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_lr(lr);
        self.config.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn state_dict(&self) -> StateDict<T> {
        LAYOUT.export(self.steps, &self.state)
    }

    fn load_state_dict(
        &mut self,
        store: &ParamStore<T>,
        state: &StateDict<T>,
    ) -> Result<(), NnError> {
        let (steps, slots) = LAYOUT.import(store, state)?;
        self.steps = steps;
        self.state = slots;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebm_tensor::Tensor;

    fn run(config: SgdConfig, p0: f64, gs: &[f64]) -> f64 {
        let mut s = ParamStore::<f64>::new();
        s.insert("p", Tensor::from_f64s(&[p0], [1])).unwrap();
        let mut sgd = Sgd::new(config).unwrap();
        for &g in gs {
            let grads = s
                .grads_from_vec(vec![Tensor::from_f64s(&[g], [1])])
                .unwrap();
            sgd.step(&mut s, &grads);
        }
        s.expect("p").item()
    }

    // The expected values are decimals worked out by hand; the optimiser's binary arithmetic
    // on numbers of order 1 differs from them by a few ulps (2.2e-16 each): 1e-14.
    const TOL: f64 = 1e-14;

    #[test]
    fn momentum_matches_hand_computation() {
        // lr 0.1, mu 0.9, g = 1, 2, 3 from p = 1:
        // b1 = 1,                 p = 1 - 0.1          = 0.9
        // b2 = 0.9 + 2 = 2.9,     p = 0.9 - 0.29       = 0.61
        // b3 = 2.61 + 3 = 5.61,   p = 0.61 - 0.561     = 0.049
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..SgdConfig::default()
        };
        let got = run(config, 1.0, &[1.0, 2.0, 3.0]);
        assert!((got - 0.049).abs() < TOL, "{got}");
    }

    #[test]
    fn nesterov_matches_hand_computation() {
        // As above with d = g + mu b:
        // b1 = 1,    d = 1 + 0.9       = 1.9,    p = 1 - 0.19      = 0.81
        // b2 = 2.9,  d = 2 + 2.61      = 4.61,   p = 0.81 - 0.461  = 0.349
        // b3 = 5.61, d = 3 + 5.049     = 8.049,  p = 0.349 - 0.8049 = -0.4559
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        };
        let got = run(config, 1.0, &[1.0, 2.0, 3.0]);
        assert!((got + 0.4559).abs() < TOL, "{got}");
    }

    #[test]
    fn weight_decay_and_dampening() {
        // lr 0.5, wd 0.5, mu 0.5, dampening 0.5, g = 0 from p = 2:
        // g1 = 1, b1 = 1,                     p = 2 - 0.5       = 1.5
        // g2 = 0.75, b2 = 0.5 + 0.375 = 0.875, p = 1.5 - 0.4375  = 1.0625
        let config = SgdConfig {
            lr: 0.5,
            momentum: 0.5,
            dampening: 0.5,
            weight_decay: 0.5,
            nesterov: false,
        };
        let got = run(config, 2.0, &[0.0, 0.0]);
        assert!((got - 1.0625).abs() < TOL, "{got}");
        let plain = SgdConfig {
            lr: 0.5,
            weight_decay: 0.5,
            ..SgdConfig::default()
        };
        assert!((run(plain, 2.0, &[1.0]) - 1.0).abs() < TOL); // 2 - 0.5 (1 + 1)
    }

    #[test]
    fn nesterov_needs_momentum_without_dampening() {
        let bad = SgdConfig {
            nesterov: true,
            ..SgdConfig::default()
        };
        assert!(Sgd::<f32>::new(bad).is_err());
        let bad = SgdConfig {
            nesterov: true,
            momentum: 0.9,
            dampening: 0.1,
            ..bad
        };
        assert!(Sgd::<f32>::new(bad).is_err());
        assert!(
            Sgd::<f32>::new(SgdConfig {
                lr: -1.0,
                ..SgdConfig::default()
            })
            .is_err()
        );
    }

    #[test]
    fn momentum_state_resumes_bit_for_bit() {
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        };
        let mut s = ParamStore::<f32>::new();
        s.insert("p", Tensor::from_f64s(&[1.0, -1.0], [2])).unwrap();
        let mut a = Sgd::new(config).unwrap();
        let grads = s
            .grads_from_vec(vec![Tensor::from_f64s(&[0.3, 0.1], [2])])
            .unwrap();
        a.step(&mut s, &grads);
        let mut b = Sgd::new(config).unwrap();
        b.load_state_dict(&s, &a.state_dict()).unwrap();
        let mut t = s.clone();
        a.step(&mut s, &grads);
        b.step(&mut t, &grads);
        assert_eq!(s.expect("p").to_vec(), t.expect("p").to_vec());
        assert_eq!(b.steps(), 2);
    }
}
