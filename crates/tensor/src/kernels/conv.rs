//! Convolution kernels (im2col and its adjoint).
