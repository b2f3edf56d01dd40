//! Loading CSV, NPY and IDX files: each format and version read exactly, and each kind of bad
//! input rejected with an error that names the file, the place and the fix.

use ebm::data::{Dataset, FileFormat, load};
use ebm_tensor::Tensor;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `bytes`, gzip-compressed.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The error message of loading `path`, checked to name the file and every word of `parts`.
#[track_caller]
fn load_error(path: &Path, parts: &[&str]) -> String {
    let err = load(path)
        .expect_err("the file should be rejected")
        .to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        err.contains(name.as_ref()),
        "the error does not name the file: {err}"
    );
    for part in parts {
        assert!(err.contains(part), "the error lacks {part:?}: {err}");
    }
    err
}

/// A fixture written by numpy (`tests/fixtures/npy/make_npy_fixtures.py`).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name)
}

/// An IDX file: header for `code` and `shape`, then `body`.
fn idx(code: u8, shape: &[u32], body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, code, shape.len() as u8];
    for d in shape {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(body);
    bytes
}

// ---- CSV ---------------------------------------------------------------------------------

#[test]
fn csv_with_or_without_a_header_reads_every_number() {
    let dir = tempfile::tempdir().unwrap();
    let with = write(dir.path(), "a.csv", b"x,y,z\n1,2,3\n-4.5, 6e-1 ,7\n");
    let without = write(dir.path(), "b.csv", b"1,2,3\n-4.5,0.6,7\n\n");
    for path in [with, without] {
        let data = load(&path).unwrap();
        assert_eq!(data.data().dims(), &[2, 3]);
        assert_eq!(data.data().data(), &[1.0, 2.0, 3.0, -4.5, 0.6, 7.0]);
        assert_eq!(data.levels(), None);
        assert_eq!(data.sample_shape(), &[3]);
    }
}

#[test]
fn gzipped_csv_reads_like_plain_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv.gz", &gzip(b"1,2\n3,4\n"));
    assert_eq!(load(&path).unwrap().data().data(), &[1.0, 2.0, 3.0, 4.0]);

    let mut truncated = gzip(b"1,2\n3,4\n5,6\n");
    truncated.truncate(truncated.len() - 10);
    let path = write(dir.path(), "cut.csv.gz", &truncated);
    load_error(&path, &["gzip", "truncated or corrupt"]);
}

#[test]
fn csv_nan_and_infinity_are_rejected_at_their_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let nan = write(dir.path(), "nan.csv", b"a,b\n1,2\n3,NaN\n");
    load_error(&nan, &["line 3, column 2", "NaN", "remove or repair"]);
    let inf = write(dir.path(), "inf.csv", b"1,2\n-inf,4\n");
    load_error(&inf, &["line 2, column 1", "inf"]);
}

#[test]
fn csv_ragged_rows_text_and_empty_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ragged = write(dir.path(), "ragged.csv", b"1,2,3\n4,5\n");
    load_error(
        &ragged,
        &["line 2", "2 fields, but line 1 has 3", "same number"],
    );
    let text = write(dir.path(), "text.csv", b"1,2\n3,four\n");
    load_error(&text, &["line 2, column 2", "\"four\" is not a number"]);
    let empty = write(dir.path(), "empty.csv", b"");
    load_error(&empty, &["no samples"]);
    let header_only = write(dir.path(), "header.csv", b"x,y\n");
    load_error(&header_only, &["no samples"]);
}

// ---- NPY ---------------------------------------------------------------------------------

#[test]
fn npy_written_by_numpy_reads_in_every_version_and_type() {
    // Element k is (k - 2) * 1.5 for floats, k * 37 % 256 for bytes, k * 1000 - 2 for ints:
    // all exact in every type, so the comparison is exact.
    let floats: Vec<f64> = (0..6).map(|k| (k as f64 - 2.0) * 1.5).collect();
    let ints: Vec<f64> = (0..6).map(|k| k as f64 * 1000.0 - 2.0).collect();
    let bytes: Vec<f64> = (0..18).map(|k| (k * 37 % 256) as f64).collect();

    let f4 = load(&fixture("f4_v1.npy")).unwrap();
    assert_eq!(
        (f4.data().dims(), f4.data().data()),
        (&[2, 3][..], &floats[..])
    );
    let f8 = load(&fixture("f8_v2.npy")).unwrap();
    assert_eq!(
        (f8.data().dims(), f8.data().data()),
        (&[3, 2][..], &floats[..])
    );
    let i8 = load(&fixture("i8_v1.npy")).unwrap();
    assert_eq!(
        (i8.data().dims(), i8.data().data()),
        (&[2, 3][..], &ints[..])
    );

    // A 1-D array becomes [n, 1]; 3-D bytes become grey images [n, 1, h, w] with 256 levels.
    let i4 = load(&fixture("i4_v1.npy")).unwrap();
    assert_eq!(
        (i4.data().dims(), i4.data().data()),
        (&[6, 1][..], &ints[..])
    );
    let u1 = load(&fixture("u1_v3.npy")).unwrap();
    assert_eq!(
        (u1.data().dims(), u1.data().data()),
        (&[2, 1, 3, 3][..], &bytes[..])
    );
    assert_eq!((u1.levels(), f8.levels()), (Some(256), None));
}

#[test]
fn npy_fortran_order_big_endian_and_unsupported_types_are_rejected_with_the_conversion() {
    let fix = "np.ascontiguousarray";
    load_error(&fixture("fortran.npy"), &["header", "Fortran", fix]);
    load_error(
        &fixture("big_endian.npy"),
        &["header", "\">f8\"", "big-endian", fix],
    );
    load_error(
        &fixture("complex.npy"),
        &["header", "\"<c16\" is not supported", fix],
    );
}

#[test]
fn npy_nan_is_rejected_at_its_flat_index() {
    load_error(&fixture("nan.npy"), &["flat index 4", "NaN"]);
}

#[test]
fn npy_truncated_padded_and_foreign_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("f8_v2.npy")).unwrap();

    // 3 bytes short of the 48 data bytes: the sixth value (flat index 5) is missing.
    let cut = write(dir.path(), "cut.npy", &good[..good.len() - 3]);
    load_error(&cut, &["flat index 5", "truncated", "holds 5 of 6 values"]);
    let cut_header = write(dir.path(), "cut_header.npy", &good[..40]);
    load_error(&cut_header, &["header", "ends inside the header"]);

    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 8]);
    let padded = write(dir.path(), "padded.npy", &padded);
    load_error(&padded, &["8 bytes follow the 6 values"]);

    let foreign = write(dir.path(), "foreign.npy", b"PK\x03\x04 not numpy at all");
    load_error(&foreign, &["header", "magic"]);
}

// ---- IDX ---------------------------------------------------------------------------------

#[test]
fn idx_ubyte_images_become_grey_images_and_gz_works() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..18).map(|k| (k * 15) as u8).collect();
    let file = idx(0x08, &[2, 3, 3], &pixels);
    for (name, bytes) in [
        ("x-idx3-ubyte", file.clone()),
        ("x-idx3-ubyte.gz", gzip(&file)),
    ] {
        let data = load(&write(dir.path(), name, &bytes)).unwrap();
        assert_eq!(data.data().dims(), &[2, 1, 3, 3]);
        assert_eq!(data.levels(), Some(256));
        let expected: Vec<f64> = pixels.iter().map(|&p| p as f64).collect();
        assert_eq!(data.data().data(), &expected[..]);
    }
}

#[test]
fn idx_float_int_and_short_types_read_big_endian() {
    let dir = tempfile::tempdir().unwrap();
    let floats: Vec<u8> = [0.5_f32, -2.25]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let ints: Vec<u8> = [-3_i32, 100_000]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let shorts: Vec<u8> = [-300_i16, 7].iter().flat_map(|v| v.to_be_bytes()).collect();
    let doubles: Vec<u8> = [1e-300_f64, 3.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    for (name, code, body, values) in [
        ("f.idx", 0x0D, floats, [0.5, -2.25]),
        ("i.idx", 0x0C, ints, [-3.0, 100_000.0]),
        ("s.idx", 0x0B, shorts, [-300.0, 7.0]),
        ("d.idx", 0x0E, doubles, [1e-300, 3.0]),
    ] {
        let data = load(&write(dir.path(), name, &idx(code, &[2], &body))).unwrap();
        assert_eq!(
            (data.data().dims(), data.data().data()),
            (&[2, 1][..], &values[..])
        );
        assert_eq!(data.levels(), None);
    }
}

#[test]
fn idx_truncated_nan_and_unknown_types_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cut = write(
        dir.path(),
        "cut-idx3-ubyte",
        &idx(0x08, &[2, 3, 3], &[1; 11]),
    );
    load_error(
        &cut,
        &["flat index 11", "truncated", "holds 11 of 18 values"],
    );
    let cut_dims = write(dir.path(), "dims-idx3-ubyte", &[0, 0, 8, 3, 0, 0, 0, 2]);
    load_error(&cut_dims, &["header", "ends inside the 3 extents"]);

    let body: Vec<u8> = [1.0_f32, f32::INFINITY]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let inf = write(dir.path(), "inf.idx", &idx(0x0D, &[1, 2], &body));
    load_error(&inf, &["flat index 1", "inf"]);

    let odd = write(dir.path(), "odd.idx", &idx(0x0A, &[1], &[0]));
    load_error(&odd, &["type code 0x0A"]);
}

// ---- dispatch, shapes ----------------------------------------------------------------------

#[test]
fn unknown_names_and_missing_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let txt = write(dir.path(), "data.txt", b"1,2\n");
    load_error(&txt, &["file name", "*.csv, *.npy"]);
    load_error(
        &dir.path().join("absent.csv"),
        &["cannot be read", "check the path"],
    );
    let (format, gz) = FileFormat::of_path(Path::new("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!((format, gz), (FileFormat::Idx, true));
}

#[test]
fn check_dim_names_both_shapes() {
    let data = Dataset::new("points.csv", Tensor::zeros([4, 3]), None, None).unwrap();
    assert!(data.check_dim(&[3], "the checkpoint").is_ok());
    let err = data
        .check_dim(&[2], "the checkpoint")
        .unwrap_err()
        .to_string();
    for part in [
        "points.csv",
        "[3]",
        "the checkpoint takes samples of shape [2]",
    ] {
        assert!(err.contains(part), "{err}");
    }
}
