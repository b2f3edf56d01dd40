//! Adam and AdamW (Kingma and Ba, 2015; Loshchilov and Hutter, 2019).

use super::slots::{Layout, Slots};
use super::{Optimizer, check_grads, check_lr, non_negative, positive, unit_interval};
use crate::{NnError, ParamGrads, ParamStore, StateDict};
use ebm_tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of [`Adam`]; `Default` is `torch.optim.Adam`'s.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// Learning rate (finite, > 0).
    pub lr: f64,
    /// Decay of the first-moment average, in [0, 1).
    pub beta1: f64,
    /// Decay of the second-moment average, in [0, 1).
    pub beta2: f64,
    /// Added to the denominator (finite, > 0).
    pub eps: f64,
    /// Weight decay (finite, >= 0): added to the gradient as `weight_decay * p` (Adam), or
    /// applied to the weights directly when `decoupled_weight_decay` is set (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled decay `p *= 1 - lr weight_decay` instead of the L2 term.
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    /// lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, decoupled
    /// weight decay 0.01.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..AdamConfig::default()
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), NnError> {
        positive("Adam lr", self.lr)?;
        unit_interval("Adam beta1", self.beta1)?;
        unit_interval("Adam beta2", self.beta2)?;
        positive("Adam eps", self.eps)?;
        non_negative("Adam weight_decay", self.weight_decay)?;
        Ok(())
    }
}

const LAYOUT: Layout = Layout {
    kind: "adam",
    slots: &["exp_avg", "exp_avg_sq"],
    counted: true,
};

/// Adam, and AdamW with [`AdamConfig::decoupled_weight_decay`], as `torch.optim.Adam` and
/// `torch.optim.AdamW` (without amsgrad). For each parameter p with gradient g, at its step t:
///
/// ```text
/// g = g + weight_decay p                  (Adam, if weight_decay > 0)
/// p = p (1 - lr weight_decay)             (AdamW)
/// m = beta1 m + (1 - beta1) g
/// v = beta2 v + (1 - beta2) g^2
/// p = p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// Scalars are computed in `f64`, the elementwise update in `T`. State per parameter: m
/// (`exp_avg`), v (`exp_avg_sq`) and t; cost 2 extra copies of the weights.
///
/// References: D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015;
/// I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
///
/// # Example
/// ```
/// use ebm_nn::{Adam, AdamConfig, Optimizer, ParamStore};
/// use ebm_tensor::Tensor;
///
/// let mut store = ParamStore::<f64>::new();
/// store.insert("x", Tensor::from_f64s(&[3.0], [1])).unwrap();
/// let mut adam = Adam::new(AdamConfig { lr: 0.1, ..AdamConfig::default() }).unwrap();
/// for _ in 0..200 {
///     let loss = store.expect("x").square().sum();
///     let grads = store.backward(&loss).unwrap();
///     adam.step(&mut store, &grads);
/// }
/// assert!(store.expect("x").item().abs() < 0.05);
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T: Float = f32> {
    config: AdamConfig,
    steps: u64,
    state: BTreeMap<String, Slots<T>>,
}

impl<T: Float> Adam<T> {
    /// An optimiser with the given settings and no state.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] as [`AdamConfig::validate`].
    pub fn new(config: AdamConfig) -> Result<Self, NnError> {
        config.validate()?;
        Ok(Adam {
            config,
            steps: 0,
            state: BTreeMap::new(),
        })
    }

    /// The settings (with the current learning rate).
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    #[track_caller]
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        check_grads(store, grads);
        let c = self.config;
        let (b1, b2, eps) = (T::of(c.beta1), T::of(c.beta2), T::of(c.eps));
        let (one_b1, one_b2) = (T::of(1.0 - c.beta1), T::of(1.0 - c.beta2));
        let l2 = (!c.decoupled_weight_decay && c.weight_decay > 0.0).then(|| T::of(c.weight_decay));
        let shrink = (c.decoupled_weight_decay && c.weight_decay > 0.0)
            .then(|| T::of(1.0 - c.lr * c.weight_decay));

        for ((name, p), g) in store.iter_mut().zip(&grads.grads) {
            let Some(g) = g else { continue };
            let slots = self.state.entry(name.to_string()).or_insert_with(|| Slots {
                tensors: vec![Tensor::zeros(p.shape()), Tensor::zeros(p.shape())],
                step: 0,
            });
            slots.step += 1;
            let t = slots.step as f64;
            let step_size = T::of(c.lr / (1.0 - c.beta1.powf(t)));
            let bc2_sqrt = T::of((1.0 - c.beta2.powf(t)).sqrt());

            let g = g.data();
            let [m, v] = slots.tensors.as_mut_slice() else {
                unreachable!("two slots")
            };
            m.update_(|m| {
                v.update_(|v| {
                    p.update_(|p| {
                        let items = p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g);
                        for (((p, m), v), &g) in items {
                            let g = match l2 {
                                Some(wd) => g + wd * *p,
                                None => g,
                            };
                            if let Some(s) = shrink {
                                *p = *p * s;
                            }
                            *m = b1 * *m + one_b1 * g;
                            *v = b2 * *v + one_b2 * g * g;
                            let denom = v.sqrt() / bc2_sqrt + eps;
                            *p = *p - step_size * *m / denom;
                        }
                    })
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

    fn store(values: &[f64]) -> ParamStore<f64> {
        let mut s = ParamStore::new();
        s.insert("p", Tensor::from_f64s(values, [values.len()]))
            .unwrap();
        s
    }

    fn grads(s: &ParamStore<f64>, g: &[f64]) -> ParamGrads<f64> {
        s.grads_from_vec(vec![Tensor::from_f64s(g, [g.len()])])
            .unwrap()
    }

    /// The update written out for one scalar, for the tests to compare with.
    #[allow(clippy::too_many_arguments)]
    fn by_hand(p: f64, gs: &[f64], lr: f64, b1: f64, b2: f64, eps: f64, wd: f64, w: bool) -> f64 {
        let (mut p, mut m, mut v) = (p, 0.0, 0.0);
        for (t, &g) in gs.iter().enumerate() {
            let t = (t + 1) as f64;
            let g = if w { g } else { g + wd * p };
            if w {
                p *= 1.0 - lr * wd;
            }
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let m_hat = m / (1.0 - b1.powf(t));
            let v_hat = v / (1.0 - b2.powf(t));
            p -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        p
    }

    // Tolerance for all comparisons below: the optimiser folds the bias corrections into
    // lr / (1 - beta1^t) and sqrt(v) / sqrt(1 - beta2^t) (as PyTorch) while the formula divides
    // m and v first; the two differ by a few roundings of numbers of order 1, so 1e-14.
    const TOL: f64 = 1e-14;

    #[test]
    fn first_step_moves_each_weight_by_about_lr() {
        // At t = 1, m_hat = g and v_hat = g^2, so the step is lr g / (|g| + eps).
        let mut s = store(&[1.0, -2.0]);
        let mut adam = Adam::new(AdamConfig {
            lr: 0.1,
            ..AdamConfig::default()
        })
        .unwrap();
        let g = grads(&s, &[0.5, -3.0]);
        adam.step(&mut s, &g);
        let want = [
            1.0 - 0.1 * 0.5 / (0.5 + 1e-8),
            -2.0 + 0.1 * 3.0 / (3.0 + 1e-8),
        ];
        for (got, want) in s.expect("p").to_f64s().iter().zip(want) {
            assert!((got - want).abs() < TOL, "{got} vs {want}");
        }
        assert!(s.expect("p").requires_grad() && !s.expect("p").has_grad_fn());
    }

    #[test]
    fn several_steps_match_the_formula() {
        let gs = [0.3, -1.2, 0.05, 2.0];
        let (lr, b1, b2, eps, wd) = (0.01, 0.8, 0.95, 1e-6, 0.1);
        for decoupled in [false, true] {
            let mut s = store(&[0.7]);
            let config = AdamConfig {
                lr,
                beta1: b1,
                beta2: b2,
                eps,
                weight_decay: wd,
                decoupled_weight_decay: decoupled,
            };
            let mut adam = Adam::new(config).unwrap();
            for g in gs {
                let g = grads(&s, &[g]);
                adam.step(&mut s, &g);
            }
            let want = by_hand(0.7, &gs, lr, b1, b2, eps, wd, decoupled);
            let got = s.expect("p").item();
            assert!(
                (got - want).abs() < TOL,
                "decoupled {decoupled}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn adamw_decay_is_decoupled_from_the_moments() {
        // With zero gradients Adam's moments stay zero, so AdamW only shrinks the weight:
        // p_t = p_0 (1 - lr wd)^t, while coupled Adam feeds wd p into the moments.
        let mut s = store(&[2.0]);
        let config = AdamConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..AdamConfig::adamw()
        };
        let mut adamw = Adam::new(config).unwrap();
        for _ in 0..3 {
            let g = grads(&s, &[0.0]);
            adamw.step(&mut s, &g);
        }
        let want = 2.0 * (1.0f64 - 0.05).powi(3);
        assert!((s.expect("p").item() - want).abs() < TOL);
        let m = &adamw.state_dict().tensors["exp_avg.p"];
        assert_eq!(m.to_f64s(), vec![0.0]);
    }

    #[test]
    fn parameters_without_gradient_are_left_alone() {
        let mut s = store(&[1.0]);
        s.insert("q", Tensor::ones([2])).unwrap();
        let mut adam = Adam::new(AdamConfig::adamw()).unwrap();
        let loss = s.expect("p").square().sum();
        let g = s.backward(&loss).unwrap();
        adam.step(&mut s, &g);
        assert_eq!(s.expect("q").to_f64s(), vec![1.0, 1.0]);
        let state = adam.state_dict();
        assert!(!state.tensors.contains_key("exp_avg.q"));
        assert_eq!(state.metadata["step.p"], "1");
    }

    #[test]
    fn invalid_settings_are_errors() {
        let bad = [
            AdamConfig {
                lr: 0.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                lr: f64::NAN,
                ..AdamConfig::default()
            },
            AdamConfig {
                beta1: 1.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                beta2: -0.1,
                ..AdamConfig::default()
            },
            AdamConfig {
                eps: 0.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                weight_decay: -1.0,
                ..AdamConfig::default()
            },
        ];
        for config in bad {
            let err = Adam::<f32>::new(config).unwrap_err();
            assert!(matches!(err, NnError::InvalidConfig { .. }), "{config:?}");
        }
    }

    #[test]
    fn state_round_trips_and_resumes_bit_for_bit() {
        let gs = [[0.3, -0.1], [1.0, 2.0], [-0.5, 0.25], [0.7, 0.7]];
        let mut a = store(&[1.0, 2.0]);
        let mut adam_a = Adam::new(AdamConfig::default()).unwrap();
        for g in &gs[..2] {
            let g = grads(&a, g);
            adam_a.step(&mut a, &g);
        }
        let mut b = a.clone();
        let mut adam_b = Adam::new(AdamConfig::default()).unwrap();
        adam_b.load_state_dict(&b, &adam_a.state_dict()).unwrap();
        assert_eq!(adam_b.steps(), 2);
        for g in &gs[2..] {
            let (ga, gb) = (grads(&a, g), grads(&b, g));
            adam_a.step(&mut a, &ga);
            adam_b.step(&mut b, &gb);
        }
        assert_eq!(a.expect("p").to_f64s(), b.expect("p").to_f64s());
        assert_eq!(adam_a.state_dict(), adam_b.state_dict());
    }

    #[test]
    fn loading_mismatched_state_lists_every_problem() {
        let mut s = store(&[1.0, 2.0]);
        let mut adam = Adam::new(AdamConfig::default()).unwrap();
        let g = grads(&s, &[1.0, 1.0]);
        adam.step(&mut s, &g);
        let mut state = adam.state_dict();
        state.tensors.remove("exp_avg_sq.p");
        state.tensors.insert("exp_avg.p".into(), Tensor::zeros([3]));
        state
            .tensors
            .insert("exp_avg.zzz".into(), Tensor::zeros([1]));
        let mut fresh = Adam::new(AdamConfig::default()).unwrap();
        let err = fresh.load_state_dict(&s, &state).unwrap_err().to_string();
        for needle in ["exp_avg.zzz", "exp_avg.p (expected [2], found [3])"] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        assert_eq!(fresh.steps(), 0);

        let mut sgd_state = adam.state_dict();
        sgd_state.metadata.insert("kind".into(), "sgd".into());
        let err = fresh.load_state_dict(&s, &sgd_state).unwrap_err();
        assert!(err.to_string().contains("`adam`"), "{err}");
    }
}
