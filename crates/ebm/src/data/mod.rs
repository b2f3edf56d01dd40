//! Data: the built-in 2-D sets (drawn in code from a seed), the built-in image sets, data
//! files (CSV, NPY, IDX), and the [`Dataset`] that holds samples in memory and draws
//! minibatches.
//!
//! Built-in 2-D sets ([`Toy2d`], all in about `[-4, 4]^2`; details in [`toy2d`]):
//! * `8gaussians`: 8 Gaussians on a circle of radius 2.83;
//! * `25gaussians`: a 5 x 5 grid of narrow Gaussians;
//! * `checkerboard`: uniform on the dark squares of a 4 x 4 board;
//! * `swissroll`: a noisy spiral of one and a half turns;
//! * `moons`: two interleaved half circles;
//! * `circles`: two concentric circles;
//! * `rings`: four concentric circles;
//! * `pinwheel`: five curved arms;
//! * `2spirals`: two interleaved spirals.
//!
//! Built-in image sets ([`Dataset`]):
//! * [`Dataset::digits`]: the 8 x 8 UCI hand-written digits, 1797 images `[1797, 1, 8, 8]`
//!   with values 0-16 and labels, embedded in the library;
//! * [`Dataset::fashion_mnist`]: Fashion-MNIST, 28 x 28 images with values 0-255 and labels,
//!   60,000 for training and 10,000 for testing, read from the Debian package
//!   `dataset-fashion-mnist`.
//!
//! Files: [`load`] reads CSV, NPY and IDX files (optionally `.gz`); the formats and their
//! limits are listed in [`files`]. Pixel data become model inputs through an
//! [`ImageTransform`]: to `[0, 1]` or `[-1, 1]`, with optional uniform dequantisation.

mod dataset;
pub mod files;
mod images;
pub mod toy2d;
mod transform;

pub use dataset::Dataset;
pub use files::{FileFormat, load};
pub use images::{FASHION_MNIST_DIR, Split};
pub use toy2d::Toy2d;
pub use transform::{ImageTransform, PixelRange, resize_bilinear};
