//! Restoring a [`Trainer`] from the checkpoint that [`Trainer::save`] wrote.

use super::{KEY_STEP, Trainable, Trainer};
use crate::Error;
use crate::objective::Objective;
use ebm_nn::{ParamStore, StateDict, load_safetensors};
use ebm_tensor::Float;
use std::path::Path;

impl<T, M, O> Trainer<T, M, O>
where
    T: Float,
    M: Trainable<T> + ?Sized,
    O: Objective<T, M>,
{
    /// Restores what [`Trainer::save`] wrote into this trainer, built as the one that saved it
    /// (same architecture, objective settings and optimisers): the model's weights and
    /// buffers, both optimisers' state, the objective's parameters and state (chains, replay
    /// buffer, fitted noise) and the step count. Training then continues bit for bit as the
    /// saved run would have, given the same batches and random draws (see
    /// [`super::step_rng`]).
    ///
    /// # Errors
    /// [`Error::Nn`] when the weights do not fit the model (every mismatch named) or the
    /// optimiser state does not fit the parameters; [`Error::Restore`] when the file has no
    /// step count, lacks the objective's parameters, or holds state of another objective
    /// setting. The weights are checked before anything changes; on a later error the trainer
    /// is partly restored: build a new one.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let restore = |reason: String| Error::Restore {
            what: format!("the training state in {}", path.display()),
            reason,
        };
        let extras = load_safetensors(path, self.model.params_mut())?;

        // The step count, then the model's optimiser.
        let step = extras
            .metadata
            .get(KEY_STEP)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                restore(format!(
                    "no readable `{KEY_STEP}` entry; it was not written by `Trainer::save`"
                ))
            })?;
        self.optimizer
            .load_state_dict(self.model.params(), &extras.prefixed("optim"))?;

        // The objective's parameters and their optimiser, then its state.
        let mut objective = extras.prefixed("objective");
        let saved_params: StateDict<T> = StateDict {
            tensors: objective
                .tensors
                .iter()
                .filter_map(|(k, t)| Some((k.strip_prefix("param.")?.to_string(), t.clone())))
                .collect(),
            metadata: Default::default(),
        };
        objective.tensors.retain(|k, _| !k.starts_with("param."));
        if let Some(store) = self.objective.params_mut() {
            set_all(store, &saved_params).map_err(restore)?;
        }
        if let (Some(opt), Some(store)) = (self.aux_optimizer.as_mut(), self.objective.params()) {
            opt.load_state_dict(store, &extras.prefixed("aux_optim"))?;
        }
        self.objective.load_state_dict(&objective)?;
        self.step = step;
        Ok(())
    }
}

/// Sets every tensor of `store` from `saved`, which must hold exactly those names.
fn set_all<T: Float>(store: &mut ParamStore<T>, saved: &StateDict<T>) -> Result<(), String> {
    let names: Vec<String> = store.names().iter().map(|n| n.to_string()).collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !saved.tensors.contains_key(*n))
        .collect();
    let extra: Vec<&String> = saved
        .tensors
        .keys()
        .filter(|k| !names.contains(k))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(format!(
            "the objective's parameters do not match: missing {missing:?}, unexpected {extra:?}; resume with the method settings the run was saved with"
        ));
    }
    for (name, t) in &saved.tensors {
        store.set(name, t.clone()).map_err(|e| e.to_string())?;
    }
    Ok(())
}
