//! The reverse pass: topological order, pruning, and accumulation of gradients.

use super::graph::{Ctx, GradFn, GradFnSlot, with_grad_mode};
use crate::{Float, Tensor, TensorError};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

/// How [`grad`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GradOptions {
    /// Record the backward pass itself, so that the returned gradients can be differentiated
    /// again (needed by score matching, whose loss is a function of a gradient).
    pub create_graph: bool,
    /// Keep the graph of the outputs usable for another backward pass. `None` means "the same
    /// as `create_graph`", as in PyTorch. With `false`, every operation traversed is marked
    /// freed, its saved tensors are released, and a second pass through it is an error.
    pub retain_graph: Option<bool>,
    /// Return zeros for inputs that the outputs do not depend on, instead of an error.
    pub allow_unused: bool,
}

impl GradOptions {
    /// Options for a gradient that will itself be differentiated.
    pub fn create_graph() -> Self {
        GradOptions {
            create_graph: true,
            ..Self::default()
        }
    }

    /// These options with `retain_graph` set.
    pub fn retain_graph(mut self, retain: bool) -> Self {
        self.retain_graph = Some(retain);
        self
    }

    /// These options with `allow_unused` set.
    pub fn allow_unused(mut self, allow: bool) -> Self {
        self.allow_unused = allow;
        self
    }
}

/// Gradients of the outputs with respect to the inputs, like `torch.autograd.grad`.
///
/// Computes sum_i grad_outputs\[i\] . d outputs\[i\] / d input for every input, by one reverse
/// pass over the part of the graph that lies between them. Each backward rule is made of
/// differentiable operations, so with `create_graph` the results carry their own graph and can
/// be differentiated again, to any order.
///
/// # Arguments
/// * `outputs`: tensors to differentiate; an output that does not require grad contributes
///   nothing.
/// * `inputs`: tensors to differentiate with respect to; each must require grad (a leaf made
///   with `set_requires_grad(true)` or any tensor computed from one).
/// * `grad_outputs`: the vector of the vector-Jacobian product, one per output, each of its
///   output's shape; `None` means ones, which needs every output to have one element.
///
/// # Returns
/// One gradient per input, of the input's shape.
///
/// # Errors
/// [`TensorError::OutputNotScalar`], [`TensorError::GradOutputShape`],
/// [`TensorError::InputWithoutGrad`], [`TensorError::UnusedInput`] (unless `allow_unused`),
/// [`TensorError::GraphFreed`].
///
/// # Example
/// ```
/// use ebm_tensor::{Tensor, autodiff::{grad, GradOptions}};
/// let x = Tensor::<f64>::from_f64s(&[1.0, 2.0], [2]).set_requires_grad(true);
/// let y = x.powi(3).sum();
/// let dy = grad(&[y], &[x.clone()], None, GradOptions::create_graph()).unwrap();
/// let d2y = grad(&[dy[0].sum()], &[x], None, GradOptions::default()).unwrap();
/// assert_eq!(dy[0].to_f64s(), vec![3.0, 12.0]); // 3 x^2
/// assert_eq!(d2y[0].to_f64s(), vec![6.0, 12.0]); // 6 x
/// ```
pub fn grad<T: Float>(
    outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    grad_outputs: Option<&[Tensor<T>]>,
    options: GradOptions,
) -> Result<Vec<Tensor<T>>, TensorError> {
    for (index, input) in inputs.iter().enumerate() {
        if !input.requires_grad() {
            return Err(TensorError::InputWithoutGrad {
                index,
                shape: input.shape().clone(),
            });
        }
    }
    let seeds = seeds(outputs, grad_outputs)?;
    let targets: Vec<u64> = inputs.iter().map(Tensor::id).collect();
    let found = run(outputs, seeds, Targets::Ids(&targets), options)?;

    // Looked up, not taken out: an input listed twice gets its gradient twice.
    let mut result = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        match found.get(&input.id()) {
            Some(g) => result.push(g.clone()),
            None if options.allow_unused => result.push(input.zeros_like()),
            None => {
                return Err(TensorError::UnusedInput {
                    index,
                    shape: input.shape().clone(),
                });
            }
        }
    }
    Ok(result)
}

/// The gradient of every leaf that requires grad, as returned by [`Tensor::backward`].
#[derive(Clone, Default)]
pub struct Gradients<T: Float> {
    by_id: HashMap<u64, Tensor<T>>,
}

impl<T: Float> Gradients<T> {
    /// The gradient with respect to `leaf`, if the output depends on it.
    pub fn get(&self, leaf: &Tensor<T>) -> Option<&Tensor<T>> {
        self.by_id.get(&leaf.id())
    }

    /// Takes the gradient with respect to `leaf` out of the set.
    pub fn remove(&mut self, leaf: &Tensor<T>) -> Option<Tensor<T>> {
        self.by_id.remove(&leaf.id())
    }

    /// The number of leaves with a gradient.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no leaf received a gradient.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl<T: Float> Tensor<T> {
    /// The gradient of this one-element tensor with respect to every leaf that requires grad
    /// and that it depends on. Releases the graph it traverses (use [`grad`] with
    /// `retain_graph` to keep it).
    ///
    /// # Errors
    /// [`TensorError::OutputNotScalar`] when the tensor has more than one element;
    /// [`TensorError::GraphFreed`] when its graph was released by an earlier pass.
    pub fn backward(&self) -> Result<Gradients<T>, TensorError> {
        let seeds = seeds(std::slice::from_ref(self), None)?;
        let options = GradOptions::default();
        let by_id = run(std::slice::from_ref(self), seeds, Targets::Leaves, options)?;
        Ok(Gradients { by_id })
    }
}

fn seeds<T: Float>(
    outputs: &[Tensor<T>],
    grad_outputs: Option<&[Tensor<T>]>,
) -> Result<Vec<Tensor<T>>, TensorError> {
    match grad_outputs {
        Some(given) => {
            assert_eq!(given.len(), outputs.len(), "one grad_output per output");
            for (index, (g, out)) in given.iter().zip(outputs).enumerate() {
                if g.shape() != out.shape() {
                    return Err(TensorError::GradOutputShape {
                        index,
                        expected: out.shape().clone(),
                        got: g.shape().clone(),
                    });
                }
            }
            Ok(given.to_vec())
        }
        None => outputs
            .iter()
            .enumerate()
            .map(|(index, out)| {
                if out.numel() != 1 {
                    return Err(TensorError::OutputNotScalar {
                        index,
                        shape: out.shape().clone(),
                    });
                }
                Ok(out.ones_like())
            })
            .collect(),
    }
}

#[derive(Clone, Copy)]
enum Targets<'a> {
    Ids(&'a [u64]),
    Leaves,
}

struct Entry<T: Float> {
    tensor: Tensor<T>,
    grad_fn: Option<Arc<GradFn<T>>>,
    freed: Option<&'static str>,
    parents: SmallVec<[Option<usize>; 2]>,
}

/// Collects the nodes that require grad reachable from `outputs`, parents before children.
fn topological_order<T: Float>(outputs: &[Tensor<T>]) -> (Vec<Entry<T>>, HashMap<u64, usize>) {
    let mut entries: Vec<Entry<T>> = Vec::new();
    let mut index_of: HashMap<u64, usize> = HashMap::new();
    let mut visiting: HashMap<u64, ()> = HashMap::new();

    // Iterative depth-first search; a node is emitted once all its parents are.
    let mut stack: Vec<(Tensor<T>, usize)> = Vec::new();
    for out in outputs.iter().filter(|t| t.requires_grad()) {
        if index_of.contains_key(&out.id()) || visiting.contains_key(&out.id()) {
            continue;
        }
        visiting.insert(out.id(), ());
        stack.push((out.clone(), 0));
        while let Some((node, child)) = stack.pop() {
            let (grad_fn, freed) = match &*node.0.grad_fn.lock().unwrap() {
                GradFnSlot::Live(f) => (Some(f.clone()), None),
                GradFnSlot::Freed(name) => (None, Some(*name)),
                GradFnSlot::None => (None, None),
            };
            let n_inputs = grad_fn.as_ref().map_or(0, |f| f.inputs.len());
            if child < n_inputs {
                let parent = grad_fn.as_ref().unwrap().inputs[child].clone();
                stack.push((node, child + 1));
                let id = parent.id();
                if parent.requires_grad()
                    && !index_of.contains_key(&id)
                    && !visiting.contains_key(&id)
                {
                    visiting.insert(id, ());
                    stack.push((parent, 0));
                }
                continue;
            }
            let parents = grad_fn
                .as_ref()
                .map(|f| {
                    f.inputs
                        .iter()
                        .map(|p| index_of.get(&p.id()).copied())
                        .collect()
                })
                .unwrap_or_default();
            index_of.insert(node.id(), entries.len());
            entries.push(Entry {
                tensor: node,
                grad_fn,
                freed,
                parents,
            });
        }
    }
    (entries, index_of)
}

fn run<T: Float>(
    outputs: &[Tensor<T>],
    seeds: Vec<Tensor<T>>,
    targets: Targets<'_>,
    options: GradOptions,
) -> Result<HashMap<u64, Tensor<T>>, TensorError> {
    let (entries, index_of) = topological_order(outputs);

    // A node is worth visiting when a target lies at or below it.
    let is_target: Vec<bool> = match targets {
        Targets::Ids(ids) => {
            let mut flags = vec![false; entries.len()];
            for id in ids {
                if let Some(&i) = index_of.get(id) {
                    flags[i] = true;
                }
            }
            flags
        }
        Targets::Leaves => entries
            .iter()
            .map(|e| e.grad_fn.is_none() && e.freed.is_none())
            .collect(),
    };
    // A freed node hides what lies below it: visit it, and fail there if a gradient reaches it.
    let mut needed = is_target.clone();
    for (i, entry) in entries.iter().enumerate() {
        if entry.freed.is_some() || entry.parents.iter().flatten().any(|&p| needed[p]) {
            needed[i] = true;
        }
    }

    let mut grads: Vec<Option<Tensor<T>>> = vec![None; entries.len()];
    let mut found = HashMap::new();
    // Inputs are made before the operations that use them, so only a target with a smaller id
    // can lie below a node.
    let older_target = |id: u64| match targets {
        Targets::Ids(ids) => ids.iter().any(|&t| t < id),
        Targets::Leaves => true,
    };
    with_grad_mode(options.create_graph, || -> Result<(), TensorError> {
        for (out, seed) in outputs.iter().zip(seeds) {
            if let Some(&i) = index_of.get(&out.id()) {
                accumulate(&mut grads[i], seed);
            }
        }
        for i in (0..entries.len()).rev() {
            if !needed[i] {
                continue;
            }
            let Some(g) = grads[i].take() else { continue };
            let entry = &entries[i];
            if is_target[i] {
                found.insert(entry.tensor.id(), g.clone());
            }
            if let Some(op) = entry.freed {
                // A released target ends the pass here, which is wrong only if another target
                // may lie below it (its gradient would be missing or partial).
                if !is_target[i] || older_target(entry.tensor.id()) {
                    return Err(TensorError::GraphFreed { op });
                }
            }
            let needs: SmallVec<[bool; 2]> = entry
                .parents
                .iter()
                .map(|p| p.is_some_and(|p| needed[p]))
                .collect();
            if !needs.iter().any(|&n| n) {
                continue;
            }
            let grad_fn = entry
                .grad_fn
                .as_ref()
                .expect("a node with parents has a grad_fn");
            let ctx = Ctx {
                out: &entry.tensor,
                grad: &g,
                inputs: &grad_fn.inputs,
                needs: &needs,
            };
            let input_grads = (grad_fn.rule)(&ctx);
            for (k, input_grad) in input_grads.into_iter().enumerate() {
                let (Some(input_grad), true) = (input_grad, needs[k]) else {
                    continue;
                };
                let p = entry.parents[k].expect("needed parents are in the graph");
                debug_assert_eq!(
                    input_grad.shape(),
                    grad_fn.inputs[k].shape(),
                    "backward of {} gave input {k} a gradient of the wrong shape",
                    grad_fn.name
                );
                accumulate(&mut grads[p], input_grad);
            }
        }
        Ok(())
    })?;

    if !options.retain_graph.unwrap_or(options.create_graph) {
        for entry in &entries {
            if let Some(f) = &entry.grad_fn {
                *entry.tensor.0.grad_fn.lock().unwrap() = GradFnSlot::Freed(f.name);
            }
        }
    }
    Ok(found)
}

fn accumulate<T: Float>(slot: &mut Option<Tensor<T>>, g: Tensor<T>) {
    *slot = Some(match slot.take() {
        Some(acc) => &acc + &g,
        None => g,
    });
}
