//! Per-parameter optimiser state and its named form: `{slot}.{param}` tensors, counts in
//! metadata.

use crate::error::ShapeProblem;
use crate::{MismatchReport, NnError, ParamStore, StateDict};
use ebm_tensor::{Float, Tensor};
use std::collections::BTreeMap;

/// The state of one parameter: one tensor per slot, and its own step count.
#[derive(Clone, Debug)]
pub(crate) struct Slots<T: Float> {
    pub tensors: Vec<Tensor<T>>,
    pub step: u64,
}

/// How an optimiser names its state.
pub(crate) struct Layout {
    /// Written as metadata `kind` and checked on load.
    pub kind: &'static str,
    /// The per-parameter tensors, in the order of [`Slots::tensors`].
    pub slots: &'static [&'static str],
    /// Whether each parameter has its own step count (metadata `step.{param}`).
    pub counted: bool,
}

impl Layout {
    /// The named form of `state` after `steps` steps.
    pub fn export<T: Float>(&self, steps: u64, state: &BTreeMap<String, Slots<T>>) -> StateDict<T> {
        let mut out = StateDict::new();
        out.metadata.insert("kind".into(), self.kind.into());
        out.metadata.insert("steps".into(), steps.to_string());
        for (param, slots) in state {
            for (slot, t) in self.slots.iter().zip(&slots.tensors) {
                out.tensors.insert(format!("{slot}.{param}"), t.clone());
            }
            if self.counted {
                out.metadata
                    .insert(format!("step.{param}"), slots.step.to_string());
            }
        }
        out
    }

    /// Reads the named form back, checked against the parameters of `store`.
    pub fn import<T: Float>(
        &self,
        store: &ParamStore<T>,
        state: &StateDict<T>,
    ) -> Result<(u64, BTreeMap<String, Slots<T>>), NnError> {
        let kind = state.metadata.get("kind").map_or("nothing", String::as_str);
        if kind != self.kind {
            return Err(NnError::config(
                "optimiser state kind",
                kind,
                &format!(
                    "`{}`: restore the state into the optimiser that saved it",
                    self.kind
                ),
            ));
        }
        let steps = parse_count(state, "steps")?;

        // Sort every tensor into (param, slot), or report it.
        let mut report = MismatchReport {
            source: format!("the {} state and the store's parameters", self.kind),
            hint: "restore optimiser state into a store with the parameters it was saved with (same architecture and names)".into(),
            ..MismatchReport::default()
        };
        let mut found: BTreeMap<String, Vec<Option<Tensor<T>>>> = BTreeMap::new();
        for (name, t) in &state.tensors {
            let hit = self.slots.iter().enumerate().find_map(|(i, slot)| {
                let param = name.strip_prefix(slot)?.strip_prefix('.')?;
                (store.kind(param) == Some(crate::TensorKind::Param)).then_some((i, param))
            });
            let Some((i, param)) = hit else {
                report.unexpected.push((name.clone(), t.dims().to_vec()));
                continue;
            };
            let expected = store.expect(param).dims();
            if expected != t.dims() {
                report.wrong_shape.push(ShapeProblem {
                    name: name.clone(),
                    expected: expected.to_vec(),
                    found: t.dims().to_vec(),
                });
                continue;
            }
            found
                .entry(param.to_string())
                .or_insert_with(|| vec![None; self.slots.len()])[i] = Some(t.detach());
        }

        // A parameter with some slots needs all of them.
        for (param, slots) in &found {
            for (slot, t) in self.slots.iter().zip(slots) {
                if t.is_none() {
                    let dims = store.expect(param).dims().to_vec();
                    report.missing.push((format!("{slot}.{param}"), dims));
                }
            }
        }
        report.into_result()?;

        let mut out = BTreeMap::new();
        for (param, slots) in found {
            let step = if self.counted {
                parse_count(state, &format!("step.{param}"))?
            } else {
                0
            };
            let tensors = slots.into_iter().map(|t| t.expect("checked")).collect();
            out.insert(param, Slots { tensors, step });
        }
        if self.counted {
            let stray = state.metadata.keys().find(|k| {
                k.strip_prefix("step.")
                    .is_some_and(|param| !out.contains_key(param))
            });
            if let Some(key) = stray {
                return Err(NnError::config(
                    "optimiser state metadata",
                    key,
                    "a step count only for parameters whose moments are saved too",
                ));
            }
        }
        Ok((steps, out))
    }
}

fn parse_count<T: Float>(state: &StateDict<T>, key: &str) -> Result<u64, NnError> {
    let value = state.metadata.get(key).map_or("nothing", String::as_str);
    value.parse().map_err(|_| {
        NnError::config(
            &format!("optimiser state `{key}`"),
            value,
            "a step count (a non-negative integer)",
        )
    })
}
