//! Exponential moving average of the weights, swapped in for evaluation.

use super::unit_interval;
use crate::error::ShapeProblem;
use crate::{MismatchReport, NnError, ParamStore, StateDict};
use ebm_tensor::{Float, Tensor};

/// An exponential moving average of every parameter of a store:
///
/// ```text
/// shadow = decay shadow + (1 - decay) p          (after each optimiser step)
/// ```
///
/// starting from the parameters' values when it is created. Samples and evaluations of EBMs
/// are often better with the averaged weights; [`Ema::swap`] (or [`Ema::with_averaged`]) puts
/// them into the store and the trained weights aside, without copying. Costs one copy of the
/// weights and one pass over them per update.
///
/// # Example
/// ```
/// use ebm_nn::{Ema, ParamStore};
/// use ebm_tensor::Tensor;
///
/// let mut store = ParamStore::<f64>::new();
/// store.insert("w", Tensor::zeros([1])).unwrap();
/// let mut ema = Ema::new(&store, 0.5).unwrap();
/// store.set("w", Tensor::ones([1])).unwrap();
/// ema.update(&store);
/// let averaged = ema.with_averaged(&mut store, |s| s.expect("w").item());
/// assert_eq!(averaged, 0.5);
/// assert_eq!(store.expect("w").item(), 1.0);
/// ```
#[derive(Clone, Debug)]
pub struct Ema<T: Float = f32> {
    decay: f64,
    shadow: Vec<(String, Tensor<T>)>,
    updates: u64,
    swapped: bool,
}

impl<T: Float> Ema<T> {
    /// An average of the parameters of `store`, starting at their current values (copied).
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] unless `0 <= decay < 1` (0.999 is a usual choice).
    pub fn new(store: &ParamStore<T>, decay: f64) -> Result<Self, NnError> {
        unit_interval("EMA decay", decay)?;
        let shadow = store
            .iter()
            .map(|(name, p)| (name.to_string(), copy_of(p)))
            .collect();
        Ok(Ema {
            decay,
            shadow,
            updates: 0,
            swapped: false,
        })
    }

    /// The decay.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// The number of updates so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Whether the averaged weights are in the store now.
    pub fn is_swapped(&self) -> bool {
        self.swapped
    }

    /// The averaged value of parameter `name` (the trained value while swapped).
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.shadow.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Moves the average towards the current parameters.
    ///
    /// # Panics
    /// While swapped (the store holds the average, not the trained weights), or when the store
    /// lacks a parameter the average has.
    #[track_caller]
    pub fn update(&mut self, store: &ParamStore<T>) {
        assert!(
            !self.swapped,
            "Ema::update while the averaged weights are swapped in; call `swap` again first"
        );
        let keep = T::of(self.decay);
        let take = T::of(1.0 - self.decay);
        for (name, shadow) in &mut self.shadow {
            let p = store.expect(name).data();
            shadow.update_(|s| {
                for (s, &p) in s.iter_mut().zip(p) {
                    *s = keep * *s + take * p;
                }
            });
        }
        self.updates += 1;
    }

    /// Exchanges the averaged and the stored weights (no copy); calling it again swaps back.
    /// The store's parameters stay leaves that require grad.
    ///
    /// # Panics
    /// When the store lacks a parameter the average has, or its shape changed.
    #[track_caller]
    pub fn swap(&mut self, store: &mut ParamStore<T>) {
        for (name, shadow) in &mut self.shadow {
            let current = store.expect(name).detach();
            let average = std::mem::replace(shadow, current);
            store
                .set(name, average)
                .unwrap_or_else(|e| panic!("Ema::swap: {e}"));
        }
        self.swapped = !self.swapped;
    }

    /// Runs `f` with the averaged weights in the store, then puts the trained ones back.
    pub fn with_averaged<R>(
        &mut self,
        store: &mut ParamStore<T>,
        f: impl FnOnce(&ParamStore<T>) -> R,
    ) -> R {
        self.swap(store);
        let result = f(store);
        self.swap(store);
        result
    }

    /// The state: the averaged weights by parameter name, the update count and whether it is
    /// swapped.
    pub fn state_dict(&self) -> StateDict<T> {
        let mut out = StateDict::new();
        for (name, t) in &self.shadow {
            out.tensors.insert(name.clone(), t.clone());
        }
        out.metadata.insert("kind".into(), "ema".into());
        out.metadata.insert("decay".into(), self.decay.to_string());
        out.metadata
            .insert("updates".into(), self.updates.to_string());
        out.metadata
            .insert("swapped".into(), self.swapped.to_string());
        out
    }

    /// Restores the state saved by [`Ema::state_dict`], checked against the parameters of
    /// `store` (the decay stays the one this was built with).
    ///
    /// # Errors
    /// [`NnError::Mismatch`] listing missing, unexpected and mis-shaped tensors;
    /// [`NnError::InvalidConfig`] for state of another kind or unreadable counts.
    pub fn load_state_dict(
        &mut self,
        store: &ParamStore<T>,
        state: &StateDict<T>,
    ) -> Result<(), NnError> {
        let meta = |key: &str| state.metadata.get(key).map_or("nothing", String::as_str);
        if meta("kind") != "ema" {
            return Err(NnError::config("EMA state kind", meta("kind"), "`ema`"));
        }
        let updates = meta("updates").parse().map_err(|_| {
            NnError::config(
                "EMA state `updates`",
                meta("updates"),
                "a non-negative integer",
            )
        })?;
        let swapped = meta("swapped").parse().map_err(|_| {
            NnError::config("EMA state `swapped`", meta("swapped"), "`true` or `false`")
        })?;

        let mut report = MismatchReport {
            source: "the EMA state and the store's parameters".into(),
            hint: "restore the average into a store with the parameters it was saved with (same architecture and names)".into(),
            ..MismatchReport::default()
        };
        for (name, p) in store.iter() {
            match state.tensors.get(name) {
                None => report.missing.push((name.to_string(), p.dims().to_vec())),
                Some(t) if t.dims() != p.dims() => report.wrong_shape.push(ShapeProblem {
                    name: name.to_string(),
                    expected: p.dims().to_vec(),
                    found: t.dims().to_vec(),
                }),
                Some(_) => {}
            }
        }
        for (name, t) in &state.tensors {
            if store.kind(name) != Some(crate::TensorKind::Param) {
                report.unexpected.push((name.clone(), t.dims().to_vec()));
            }
        }
        report.into_result()?;

        self.shadow = store
            .iter()
            .map(|(name, _)| (name.to_string(), state.tensors[name].detach()))
            .collect();
        self.updates = updates;
        self.swapped = swapped;
        Ok(())
    }
}

/// A leaf without grad holding a copy of the values (not sharing the buffer, so that the
/// optimiser's in-place updates of the parameter do not need to copy it).
fn copy_of<T: Float>(t: &Tensor<T>) -> Tensor<T> {
    Tensor::from_vec(t.to_vec(), t.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(v: f64) -> ParamStore<f64> {
        let mut s = ParamStore::new();
        s.insert("w", Tensor::from_f64s(&[v, 2.0 * v], [2]))
            .unwrap();
        s
    }

    #[test]
    fn average_follows_the_recursion() {
        // decay 0.9, shadow 1 then parameters 2, 4, 0:
        // 0.9 + 0.2 = 1.1;  0.99 + 0.4 = 1.39;  1.251 + 0 = 1.251.
        let mut s = store(1.0);
        let mut ema = Ema::new(&s, 0.9).unwrap();
        for v in [2.0, 4.0, 0.0] {
            s.set("w", Tensor::from_f64s(&[v, 2.0 * v], [2])).unwrap();
            ema.update(&s);
        }
        let got = ema.get("w").unwrap().to_f64s();
        // Three steps of the recursion against decimals: a few ulps of numbers near 1.
        assert!(
            (got[0] - 1.251).abs() < 1e-14 && (got[1] - 2.502).abs() < 1e-14,
            "{got:?}"
        );
        assert_eq!(ema.updates(), 3);
    }

    #[test]
    fn swap_exchanges_and_keeps_grad_leaves() {
        let mut s = store(1.0);
        let mut ema = Ema::new(&s, 0.5).unwrap();
        s.set("w", Tensor::from_f64s(&[3.0, 6.0], [2])).unwrap();
        ema.update(&s);
        ema.swap(&mut s);
        assert!(ema.is_swapped());
        assert_eq!(s.expect("w").to_f64s(), vec![2.0, 4.0]);
        assert!(s.expect("w").requires_grad() && !s.expect("w").has_grad_fn());
        ema.swap(&mut s);
        assert_eq!(s.expect("w").to_f64s(), vec![3.0, 6.0]);
        assert_eq!(ema.get("w").unwrap().to_f64s(), vec![2.0, 4.0]);
    }

    #[test]
    fn starts_from_a_copy_not_a_shared_buffer() {
        let mut s = store(1.0);
        let ema = Ema::new(&s, 0.5).unwrap();
        s.get_mut("w").unwrap().update_(|d| d[0] = 7.0);
        assert_eq!(ema.get("w").unwrap().to_f64s(), vec![1.0, 2.0]);
    }

    #[test]
    fn state_round_trip_and_mismatch() {
        let s = store(1.0);
        let mut ema = Ema::new(&s, 0.9).unwrap();
        ema.update(&s);
        let mut other = Ema::new(&s, 0.9).unwrap();
        other.load_state_dict(&s, &ema.state_dict()).unwrap();
        assert_eq!(other.state_dict(), ema.state_dict());

        let mut bigger = store(1.0);
        bigger.insert("v", Tensor::ones([1])).unwrap();
        let err = other
            .load_state_dict(&bigger, &ema.state_dict())
            .unwrap_err();
        assert!(err.to_string().contains("missing (1)"), "{err}");
        assert!(Ema::new(&s, 1.0).is_err());
    }

    #[test]
    #[should_panic(expected = "swapped in")]
    fn update_while_swapped_panics() {
        let mut s = store(1.0);
        let mut ema = Ema::new(&s, 0.5).unwrap();
        ema.swap(&mut s);
        ema.update(&s);
    }
}
