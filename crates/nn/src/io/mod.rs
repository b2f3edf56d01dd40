//! Weights on disk: a [`ParamStore`](crate::ParamStore) and extra named tensors as one
//! safetensors file, written atomically.

mod atomic;
mod weights;

pub use weights::{
    FORMAT_VERSION, RESERVED_PREFIX, load_safetensors, read_safetensors, save_safetensors,
};
