//! Neural-network building blocks for `ebm`: parameters, layers, optimisers, weights on disk.

#![deny(missing_docs)]
