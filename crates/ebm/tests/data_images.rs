//! The built-in image sets and the dataset operations: digits (embedded), Fashion-MNIST (when
//! installed), transforms, minibatches and splits.

use ebm::data::{Dataset, ImageTransform, Split};
use rand::SeedableRng;

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

#[test]
fn digits_load_with_their_shape_range_and_class_counts() {
    // The class counts of the UCI test set as scikit-learn documents them: exact.
    let digits = Dataset::digits();
    assert_eq!(digits.data().dims(), &[1797, 1, 8, 8]);
    assert_eq!(digits.levels(), Some(17));
    assert!(
        digits
            .data()
            .data()
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v))
    );
    assert!(digits.data().data().contains(&16.0));
    let mut counts = [0_usize; 10];
    for &label in digits.labels().unwrap() {
        counts[label as usize] += 1;
    }
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);

    // The first image is a zero whose top row is 0 0 5 13 9 1 0 0 (the file's first line).
    assert_eq!(digits.labels().unwrap()[0], 0);
    assert_eq!(
        &digits.data().data()[..8],
        &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]
    );
}

#[test]
fn transforms_put_digits_in_the_documented_ranges() {
    // Plain [-1, 1]: 0 -> -1 and 16 -> 1 exactly. Dequantised [0, 1]: (v + u) / 17 in [0, 1),
    // with mean E[v] / 17 + 1 / 34 (mean of u is 1/2): over all 115,008 entries the noise mean
    // has standard error 0.29 / 17 / sqrt(115,008) = 5e-5, so 5e-4 is a 10-sigma bound.
    let digits = Dataset::digits();
    let raw_mean = digits.data().data().iter().sum::<f64>() / digits.data().numel() as f64;

    let symmetric = digits
        .clone()
        .with_transform(ImageTransform::symmetric())
        .unwrap();
    let x = symmetric.all::<f64, _>(&mut rng(0));
    let (lo, hi) = x
        .data()
        .iter()
        .fold((1.0_f64, -1.0_f64), |(l, h), &v| (l.min(v), h.max(v)));
    assert_eq!((lo, hi), (-1.0, 1.0));

    let dequantised = digits
        .with_transform(ImageTransform::unit().dequantized())
        .unwrap();
    let x = dequantised.all::<f64, _>(&mut rng(1));
    assert!(x.data().iter().all(|v| (0.0..1.0).contains(v)));
    let mean = x.data().iter().sum::<f64>() / x.numel() as f64;
    let expected = raw_mean / 17.0 + 1.0 / 34.0;
    assert!((mean - expected).abs() < 5e-4, "{mean} vs {expected}");
}

#[test]
fn batches_are_distinct_samples_and_splits_partition_the_set() {
    let digits = Dataset::digits();

    // A batch of all 1797 samples (without replacement) is a permutation of the set: the
    // sums of the images match exactly (integers in f64).
    let batch = digits.batch::<f64, _>(1797, &mut rng(2));
    assert_eq!(batch.dims(), &[1797, 1, 8, 8]);
    let mut sums: Vec<u64> = batch
        .data()
        .chunks(64)
        .map(|c| c.iter().sum::<f64>() as u64)
        .collect();
    let mut expected: Vec<u64> = digits
        .data()
        .data()
        .chunks(64)
        .map(|c| c.iter().sum::<f64>() as u64)
        .collect();
    sums.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sums, expected);

    // Same seed, same batch; the split sizes are round(0.2 * 1797) = 359 and 1438.
    let a = digits.batch::<f32, _>(32, &mut rng(3));
    let b = digits.batch::<f32, _>(32, &mut rng(3));
    assert_eq!(a.data(), b.data());
    let (train, test) = digits.split(0.2, &mut rng(4)).unwrap();
    assert_eq!((train.len(), test.len()), (1438, 359));
    assert_eq!(train.labels().unwrap().len(), 1438);
    assert_eq!((train.name(), test.name()), ("digits/train", "digits/test"));
    assert!(digits.split(1.5, &mut rng(5)).is_err());
}

#[test]
fn continuous_data_refuse_image_transforms() {
    let data = ebm_tensor::Tensor::zeros([3, 2]);
    let set = Dataset::new("points", data, None, None).unwrap();
    let err = set
        .with_transform(ImageTransform::unit())
        .unwrap_err()
        .to_string();
    assert!(err.contains("quantised"), "{err}");
}

#[test]
fn fashion_mnist_loads_when_installed() {
    let dir = std::path::Path::new(ebm::data::FASHION_MNIST_DIR);
    if !dir.join("t10k-images-idx3-ubyte.gz").is_file() {
        println!(
            "note: Fashion-MNIST is not installed; skipped (apt-get install dataset-fashion-mnist)"
        );
        return;
    }

    // 10,000 test and 60,000 training images with 1,000 and 6,000 per class (exact, as
    // published), bytes 0-255.
    for (split, n) in [(Split::Test, 10_000), (Split::Train, 60_000)] {
        let set = Dataset::fashion_mnist(split).unwrap();
        assert_eq!(set.data().dims(), &[n, 1, 28, 28]);
        assert_eq!(set.levels(), Some(256));
        assert!(
            set.data()
                .data()
                .iter()
                .all(|&v| (0.0..=255.0).contains(&v))
        );
        let mut counts = [0_usize; 10];
        for &label in set.labels().unwrap() {
            counts[label as usize] += 1;
        }
        assert_eq!(counts, [n / 10; 10]);
    }
}

#[test]
fn a_missing_fashion_mnist_gives_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    let err = Dataset::fashion_mnist_in(dir.path(), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    assert!(
        err.contains("sudo apt-get install dataset-fashion-mnist"),
        "{err}"
    );
}
