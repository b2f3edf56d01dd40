//! A data set in memory: samples, their shape, optional labels, minibatches and splits.

use super::transform::ImageTransform;
use crate::Error;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use rand::seq::index;

/// Samples held in memory as `f64`, batch-first: `[n, d]` for vectors, `[n, c, h, w]` for
/// images, with optional integer labels and an optional image transform that [`batch`]
/// applies.
///
/// Values are kept as read (pixel counts 0-255 for bytes, 0-16 for the digits); when the
/// data are quantised, [`levels`] says how many values a pixel can take, and an
/// [`ImageTransform`] turns them into `[0, 1]` or `[-1, 1]`, with or without dequantisation
/// noise.
///
/// # Example
/// ```
/// use ebm::data::{Dataset, ImageTransform};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let digits = Dataset::digits().with_transform(ImageTransform::symmetric().dequantized())?;
/// let (train, test) = digits.split(0.2, &mut rng)?; // 1438 and 359 images
/// let batch = train.batch::<f32, _>(128, &mut rng); // [128, 1, 8, 8], in [-1, 1)
/// assert_eq!((train.len(), test.len()), (1438, 359));
/// assert_eq!(batch.dims(), &[128, 1, 8, 8]);
/// assert!(batch.data().iter().all(|v| (-1.0..1.0).contains(v)));
/// # Ok::<(), ebm::Error>(())
/// ```
///
/// [`batch`]: Dataset::batch
/// [`levels`]: Dataset::levels
#[derive(Clone, Debug)]
pub struct Dataset {
    name: String,
    data: Tensor<f64>,
    labels: Option<Vec<u32>>,
    levels: Option<u32>,
    transform: Option<ImageTransform>,
}

impl Dataset {
    /// A data set from samples `[n, ...]`, with labels (one per sample) or none.
    ///
    /// `levels` is the number of values a quantised entry can take (256 for bytes): entries
    /// are then integers in `0..levels`. Use `None` for continuous data.
    ///
    /// # Errors
    /// [`Error::Data`] when the data have no sample axis, hold a non-finite value, the labels
    /// do not match the samples in number, or an entry is outside `0..levels`.
    pub fn new(
        name: impl Into<String>,
        data: Tensor<f64>,
        labels: Option<Vec<u32>>,
        levels: Option<u32>,
    ) -> Result<Self, Error> {
        let name = name.into();
        if data.rank() < 2 {
            let problem = format!(
                "samples have shape {:?}, with no axis per sample",
                data.dims()
            );
            return Err(Error::data(
                &name,
                "shape",
                problem,
                "reshape the data to [n, d]",
            ));
        }
        if let Some(i) = data.data().iter().position(|v| !v.is_finite()) {
            let problem = format!("value {} at flat index {i}", data.data()[i]);
            return Err(Error::data(
                &name,
                "data",
                problem,
                "remove or repair those samples",
            ));
        }
        if let Some(labels) = &labels
            && labels.len() != data.dim(0)
        {
            let problem = format!("{} labels for {} samples", labels.len(), data.dim(0));
            return Err(Error::data(
                &name,
                "labels",
                problem,
                "give one label per sample",
            ));
        }
        if let Some(levels) = levels {
            let bad = data
                .data()
                .iter()
                .position(|&v| v < 0.0 || v >= levels as f64);
            if let Some(i) = bad.or_else(|| data.data().iter().position(|v| v.fract() != 0.0)) {
                let value = data.data()[i];
                let problem = format!("value {value} at flat index {i} is not in 0..{levels}");
                let fix = "give the right number of levels, or None for continuous data";
                return Err(Error::data(&name, "data", problem, fix));
            }
        }
        Ok(Dataset {
            name,
            data,
            labels,
            levels,
            transform: None,
        })
    }

    /// The data set's name (the file it came from, or a built-in name such as `digits`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All samples as stored (before any transform), `[n, ...]`.
    pub fn data(&self) -> &Tensor<f64> {
        &self.data
    }

    /// The labels, one per sample, when the set has them.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    /// How many values a quantised entry can take (entries are integers in `0..levels`), or
    /// `None` for continuous data.
    pub fn levels(&self) -> Option<u32> {
        self.levels
    }

    /// The transform that [`Dataset::batch`] applies, if any.
    pub fn transform(&self) -> Option<&ImageTransform> {
        self.transform.as_ref()
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.data.dim(0)
    }

    /// `true` when the set has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of one sample: `[d]` or `[c, h, w]`.
    pub fn sample_shape(&self) -> &[usize] {
        &self.data.dims()[1..]
    }

    /// The number of values in one sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape().iter().product()
    }

    /// The same set with `transform` applied by [`Dataset::batch`] and [`Dataset::all`].
    ///
    /// # Errors
    /// [`Error::Data`] when the set is not quantised ([`Dataset::levels`] is `None`): the
    /// transforms map `0..levels` to a fixed range and mean nothing for continuous data.
    pub fn with_transform(mut self, transform: ImageTransform) -> Result<Self, Error> {
        if self.levels.is_none() {
            let problem = "image transforms need quantised data (integers in 0..levels)";
            let fix = "load pixel data (bytes), or scale continuous data yourself";
            return Err(Error::data(&self.name, "transform", problem, fix));
        }
        self.transform = Some(transform);
        Ok(self)
    }

    /// `n` distinct samples drawn uniformly at random (without replacement), transformed.
    ///
    /// # Shapes
    /// Returns `[n, ...sample_shape]`.
    ///
    /// # Panics
    /// When `n` is larger than the set (a batch size is a setting: check it against
    /// [`Dataset::len`] once, when the run is configured).
    #[track_caller]
    pub fn batch<T: Float, R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor<T> {
        assert!(
            n <= self.len(),
            "batch of {n} from {}, which has {} samples",
            self.name,
            self.len()
        );
        let rows = index::sample(rng, self.len(), n).into_vec();
        self.gather(&rows, rng)
    }

    /// Every sample in order, transformed (with fresh dequantisation noise when the transform
    /// asks for it).
    pub fn all<T: Float, R: Rng + ?Sized>(&self, rng: &mut R) -> Tensor<T> {
        let rows: Vec<usize> = (0..self.len()).collect();
        self.gather(&rows, rng)
    }

    /// The samples at `rows`, converted to `T` and transformed.
    fn gather<T: Float, R: Rng + ?Sized>(&self, rows: &[usize], rng: &mut R) -> Tensor<T> {
        let len = self.sample_len();
        let data = self.data.data();
        let mut out = Vec::with_capacity(rows.len() * len);
        for &row in rows {
            out.extend_from_slice(&data[row * len..(row + 1) * len]);
        }
        if let (Some(transform), Some(levels)) = (&self.transform, self.levels) {
            transform.apply_in_place(&mut out, levels, rng);
        }

        let mut shape = vec![rows.len()];
        shape.extend_from_slice(self.sample_shape());
        Tensor::from_vec(out.into_iter().map(T::of).collect(), shape)
    }

    /// A random split into `(train, test)`, with `round(test_fraction * len)` samples in the
    /// test part; both keep the name (suffixed `/train`, `/test`), labels, levels and
    /// transform.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `test_fraction` is not in `[0, 1]`.
    pub fn split<R: Rng + ?Sized>(
        &self,
        test_fraction: f64,
        rng: &mut R,
    ) -> Result<(Dataset, Dataset), Error> {
        if !(0.0..=1.0).contains(&test_fraction) {
            return Err(Error::config(
                "test fraction",
                test_fraction,
                "a number in [0, 1]",
            ));
        }
        let n_test = (test_fraction * self.len() as f64).round() as usize;
        let order = index::sample(rng, self.len(), self.len()).into_vec();
        let (test, train) = order.split_at(n_test);
        Ok((self.subset(train, "train"), self.subset(test, "test")))
    }

    /// The samples at `rows` (kept in that order) as a new set named `{name}/{suffix}`.
    fn subset(&self, rows: &[usize], suffix: &str) -> Dataset {
        let len = self.sample_len();
        let data = self.data.data();
        let mut values = Vec::with_capacity(rows.len() * len);
        for &row in rows {
            values.extend_from_slice(&data[row * len..(row + 1) * len]);
        }
        let mut shape = vec![rows.len()];
        shape.extend_from_slice(self.sample_shape());
        Dataset {
            name: format!("{}/{suffix}", self.name),
            data: Tensor::from_vec(values, shape),
            labels: self
                .labels
                .as_ref()
                .map(|l| rows.iter().map(|&r| l[r]).collect()),
            levels: self.levels,
            transform: self.transform.clone(),
        }
    }

    /// `Ok(())` when one sample has the shape `expected` (such as a checkpoint's input shape);
    /// otherwise an error that names both shapes.
    ///
    /// # Errors
    /// [`Error::Data`] naming this set, its sample shape and `model`.
    pub fn check_dim(&self, expected: &[usize], model: &str) -> Result<(), Error> {
        if self.sample_shape() == expected {
            return Ok(());
        }
        let problem = format!(
            "samples have shape {:?}, but {model} takes samples of shape {expected:?}",
            self.sample_shape()
        );
        let fix = format!("use data with samples of shape {expected:?}, or train a new model");
        Err(Error::data(&self.name, "sample shape", problem, fix))
    }
}
