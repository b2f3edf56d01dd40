//! The loops over raw buffers. Nothing outside this module indexes a tensor's buffer by hand,
//! so that another backend (a GPU, say) is an addition here rather than a rewrite above.
//!
//! Parallelism: loops split into chunks of a fixed size (never a size derived from the number
//! of threads), so results are identical for any number of threads.

pub(crate) mod basis;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod layout;
pub(crate) mod matmul;
pub(crate) mod reduce;
pub(crate) mod sigmoid;
pub(crate) mod smooth;

/// Elements per parallel chunk for elementwise work.
pub(crate) const CHUNK: usize = 8192;

/// Below this many elements, loops run on the calling thread.
pub(crate) const PARALLEL_MIN: usize = 32768;
