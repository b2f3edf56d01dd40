//! Training objectives: each turns an energy and a batch of data into a differentiable loss.

pub mod score_matching;
