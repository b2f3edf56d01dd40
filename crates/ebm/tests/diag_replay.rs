//! The replay buffer: shapes, restart frequency, write-back, save and restore, errors.

use ebm::Error;
use ebm::sampler::{ReplayBuffer, ReplayBufferConfig, RestartDistribution};
use ebm_nn::{ParamStore, StateDict, load_safetensors, read_safetensors, save_safetensors};
use ebm_tensor::{Float, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;

const UNIFORM: RestartDistribution = RestartDistribution::Uniform {
    low: -1.0,
    high: 1.0,
};

fn buffer<T: Float>(capacity: usize, p: f64, shape: &[usize], seed: u64) -> ReplayBuffer<T> {
    let config = ReplayBufferConfig {
        restart_probability: p,
        ..ReplayBufferConfig::new(capacity, UNIFORM)
    };
    ReplayBuffer::new(config, shape, &mut StdRng::seed_from_u64(seed)).unwrap()
}

/// Overwrites every entry with `value`, which no restart draw of `UNIFORM` can produce.
fn fill(buffer: &mut ReplayBuffer<f64>, value: f64) {
    let n = buffer.capacity();
    let mut shape = vec![n];
    shape.extend_from_slice(buffer.sample_shape());
    let indices: Vec<usize> = (0..n).collect();
    buffer.push(&indices, &Tensor::full(shape, value)).unwrap();
}

#[test]
fn buffer_is_created_full_with_restart_draws() {
    let b = buffer::<f32>(100, 0.05, &[3, 4, 4], 0);
    assert_eq!(b.buffer().dims(), &[100, 3, 4, 4]);
    assert_eq!((b.len(), b.capacity()), (100, 100));
    assert!(!b.is_empty());
    assert!(b.buffer().to_f64s().iter().all(|v| (-1.0..1.0).contains(v)));

    // Gaussian restarts: mean 3, std 0.5 over 100 * 48 = 4800 values; 5 standard errors of
    // the mean (0.5 / sqrt(4800) = 0.0072) is 0.036, and the sample std is within 5% of 0.5
    // (its standard error is 0.5 / sqrt(2 * 4800) = 1%).
    let config = ReplayBufferConfig::new(
        100,
        RestartDistribution::Gaussian {
            mean: 3.0,
            std: 0.5,
        },
    );
    let g = ReplayBuffer::<f64>::new(config, &[3, 4, 4], &mut StdRng::seed_from_u64(1)).unwrap();
    let v = g.buffer().to_f64s();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    assert!((mean - 3.0).abs() < 0.036, "mean {mean}");
    assert!((std / 0.5 - 1.0).abs() < 0.05, "std {std}");
}

#[test]
fn sample_draws_distinct_entries_and_push_writes_them_back_in_place() {
    let mut b = buffer::<f64>(50, 0.0, &[2], 2);
    let before = b.buffer().to_f64s();
    let mut rng = StdRng::seed_from_u64(3);
    let (x, indices) = b.sample(20, &mut rng).unwrap();
    assert_eq!(x.dims(), &[20, 2]);
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "indices repeat: {indices:?}");

    // Without restarts the batch is a copy of the drawn rows.
    for (j, &i) in indices.iter().enumerate() {
        assert_eq!(x.to_f64s()[2 * j..2 * j + 2], before[2 * i..2 * i + 2]);
    }

    // Write back x + 10: exactly the drawn rows change, to the pushed values.
    let shifted = x.add_scalar(10.0);
    b.push(&indices, &shifted).unwrap();
    let after = b.buffer().to_f64s();
    for i in 0..50 {
        match indices.iter().position(|&k| k == i) {
            Some(j) => assert_eq!(after[2 * i..2 * i + 2], shifted.to_f64s()[2 * j..2 * j + 2]),
            None => assert_eq!(after[2 * i..2 * i + 2], before[2 * i..2 * i + 2]),
        }
    }
}

#[test]
fn restarted_fraction_matches_restart_probability() {
    let p = 0.05;
    let mut b = buffer::<f64>(500, p, &[3], 4);
    fill(&mut b, 10.0);
    let mut rng = StdRng::seed_from_u64(5);

    // 100 batches of 200: 20_000 Bernoulli(0.05) draws. Binomial sd of the fraction:
    // sqrt(0.05 * 0.95 / 20_000) = 0.00154; 5 sd = 0.0077 (a correct buffer fails with
    // probability below 1e-6). Restarted rows come from U[-1, 1), kept ones are all 10.
    let (mut restarted, mut total) = (0, 0);
    for _ in 0..100 {
        let (x, _) = b.sample(200, &mut rng).unwrap();
        for row in x.to_f64s().chunks(3) {
            if row == [10.0; 3] {
                // kept
            } else {
                assert!(row.iter().all(|v| (-1.0..1.0).contains(v)), "row {row:?}");
                restarted += 1;
            }
            total += 1;
        }
    }
    let fraction = restarted as f64 / total as f64;
    assert!(
        (fraction - p).abs() < 0.0077,
        "restarted fraction {fraction}"
    );

    // The extremes are exact.
    let mut never = buffer::<f64>(100, 0.0, &[3], 6);
    fill(&mut never, 10.0);
    let (x, _) = never.sample(100, &mut rng).unwrap();
    assert!(x.to_f64s().iter().all(|&v| v == 10.0));
    let mut always = buffer::<f64>(100, 1.0, &[3], 7);
    fill(&mut always, 10.0);
    let (x, _) = always.sample(100, &mut rng).unwrap();
    assert!(x.to_f64s().iter().all(|&v| v != 10.0));
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "ebm-diag-{name}-{}.safetensors",
        std::process::id()
    ))
}

/// Save under a prefix next to (empty) weights, read back with `read` or `load`, restore.
fn save_restore_is_bit_for_bit<T: Float>(name: &str) {
    let mut b = buffer::<T>(64, 0.3, &[2, 3], 8);
    let mut rng = StdRng::seed_from_u64(9);
    let (x, indices) = b.sample(16, &mut rng).unwrap();
    b.push(&indices, &x.mul_scalar(1.0 / 3.0)).unwrap();

    let mut extras = StateDict::new();
    extras.merge_prefixed("replay", b.state_dict()).unwrap();
    let path = temp_path(name);
    save_safetensors(&path, &ParamStore::<T>::new(), &extras).unwrap();
    let read = read_safetensors::<T>(&path).unwrap();
    let loaded = load_safetensors(&path, &mut ParamStore::<T>::new()).unwrap();
    std::fs::remove_file(&path).unwrap();

    for saved in [read, loaded] {
        let restored = ReplayBuffer::from_state_dict(&saved.prefixed("replay")).unwrap();

        // Bitwise equality of the buffer (StateDict's PartialEq compares bits), the config
        // and the shape.
        assert_eq!(restored.state_dict(), b.state_dict());
        assert_eq!(restored.config(), b.config());
        assert_eq!(restored.sample_shape(), b.sample_shape());

        // The same seed draws the same batch, restarts included.
        let (x1, i1) = b.sample(32, &mut StdRng::seed_from_u64(10)).unwrap();
        let (x2, i2) = restored.sample(32, &mut StdRng::seed_from_u64(10)).unwrap();
        assert_eq!(i1, i2);
        let bits = |t: &Tensor<T>| t.to_f64s().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x1), bits(&x2));
    }
}

#[test]
fn save_and_restore_through_safetensors_is_bit_for_bit_f64() {
    save_restore_is_bit_for_bit::<f64>("f64");
}

#[test]
fn save_and_restore_through_safetensors_is_bit_for_bit_f32() {
    save_restore_is_bit_for_bit::<f32>("f32");
}

#[test]
fn config_reads_from_json_with_the_default_restart_probability() {
    let text = r#"{"capacity": 10000, "restart": {"kind": "uniform", "low": -1.0, "high": 1.0}}"#;
    let config: ReplayBufferConfig = serde_json::from_str(text).unwrap();
    assert_eq!(config, ReplayBufferConfig::new(10_000, UNIFORM));
    assert_eq!(config.restart_probability, 0.05);
    let text =
        r#"{"capacity": 1, "restart": {"kind": "gaussian", "mean": 0.0, "std": 1.0, "x": 1}}"#;
    assert!(serde_json::from_str::<ReplayBufferConfig>(text).is_err());
}

#[test]
fn bad_configs_and_batches_are_refused_naming_the_setting() {
    let mut rng = StdRng::seed_from_u64(11);
    let new = |config: ReplayBufferConfig, shape: &[usize]| {
        ReplayBuffer::<f64>::new(config, shape, &mut StdRng::seed_from_u64(0))
            .unwrap_err()
            .to_string()
    };
    let ok = ReplayBufferConfig::new(10, UNIFORM);
    assert!(
        new(
            ReplayBufferConfig {
                capacity: 0,
                ..ok.clone()
            },
            &[2]
        )
        .contains("capacity")
    );
    for p in [-0.1, 1.5, f64::NAN] {
        let config = ReplayBufferConfig {
            restart_probability: p,
            ..ok.clone()
        };
        assert!(new(config, &[2]).contains("restart_probability"));
    }
    let flat = RestartDistribution::Uniform {
        low: 1.0,
        high: 1.0,
    };
    assert!(new(ReplayBufferConfig::new(10, flat), &[2]).contains("low < high"));
    let narrow = RestartDistribution::Gaussian {
        mean: 0.0,
        std: 0.0,
    };
    assert!(new(ReplayBufferConfig::new(10, narrow), &[2]).contains("std"));
    assert!(new(ok.clone(), &[2, 0]).contains("sample_shape"));

    let mut b = ReplayBuffer::<f64>::new(ok, &[2], &mut rng).unwrap();
    for n in [0, 11] {
        let err = b.sample(n, &mut rng).unwrap_err();
        assert!(err.to_string().contains("batch size"), "{err}");
    }
    let err = b.push(&[0, 1], &Tensor::zeros([2, 3])).unwrap_err();
    assert!(
        matches!(err, Error::Shape { ref found, .. } if found == &[2, 3]),
        "{err}"
    );
}

#[test]
#[should_panic(expected = "appears twice")]
fn push_with_a_repeated_index_panics() {
    let mut b = buffer::<f64>(10, 0.0, &[2], 12);
    let _ = b.push(&[3, 3], &Tensor::zeros([2, 2]));
}

#[test]
fn bad_saved_states_are_refused_naming_the_problem() {
    let good = buffer::<f64>(8, 0.05, &[2], 13).state_dict();
    let refuse = |edit: &dyn Fn(&mut StateDict<f64>), needle: &str| {
        let mut state = good.clone();
        edit(&mut state);
        let err = ReplayBuffer::from_state_dict(&state).unwrap_err();
        assert!(matches!(err, Error::Restore { .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
    };
    refuse(&|s| drop(s.tensors.remove("buffer")), "no `buffer` tensor");
    refuse(&|s| drop(s.metadata.remove("config")), "no `config` entry");
    refuse(
        &|s| drop(s.metadata.remove("sample_shape")),
        "no `sample_shape` entry",
    );
    refuse(
        &|s| drop(s.metadata.insert("config".into(), "{".into())),
        "not a replay buffer config",
    );
    refuse(
        &|s| drop(s.metadata.insert("sample_shape".into(), "[-1]".into())),
        "not a JSON array",
    );
    refuse(
        &|s| drop(s.metadata.insert("sample_shape".into(), "[0]".into())),
        "sample shape",
    );
    refuse(
        &|s| {
            let text = s.metadata["config"].replace("0.05", "2.0");
            s.metadata.insert("config".into(), text);
        },
        "restart_probability",
    );
    refuse(
        &|s| drop(s.tensors.insert("buffer".into(), Tensor::zeros([8, 3]))),
        "[8, 2]",
    );
}
