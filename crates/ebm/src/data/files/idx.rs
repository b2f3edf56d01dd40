//! The IDX format of MNIST (and Fashion-MNIST).
//!
//! Layout: two zero bytes, a type code (`0x08` ubyte, `0x09` byte, `0x0B` short, `0x0C` int,
//! `0x0D` float, `0x0E` double), the number of axes, each extent as a big-endian `u32`, then
//! the values, big-endian, row-major.

use super::{Array, check_finite};
use crate::Error;
use std::fmt::Display;

/// Parses the bytes of an IDX file.
pub(super) fn parse_idx(file: &dyn Display, bytes: &[u8]) -> Result<Array, Error> {
    let header_err = |problem: String| {
        let fix = "give an IDX file (such as train-images-idx3-ubyte), complete";
        Error::data(file, "header", problem, fix)
    };

    // Magic: 0, 0, type, rank.
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(header_err(
            "the file does not start with the IDX magic 0x0000".into(),
        ));
    }
    let (code, rank) = (bytes[2], bytes[3] as usize);
    let (size, levels): (usize, Option<u32>) = match code {
        0x08 => (1, Some(256)),
        0x09 => (1, None),
        0x0B => (2, None),
        0x0C | 0x0D => (4, None),
        0x0E => (8, None),
        _ => {
            let problem = format!("type code 0x{code:02X} is not an IDX type");
            let fix = "IDX types are 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, \
                       0x0E double; check that the file is IDX";
            return Err(Error::data(file, "header", problem, fix));
        }
    };

    // Extents.
    let data_start = 4 + 4 * rank;
    let dims = bytes
        .get(4..data_start)
        .ok_or_else(|| header_err(format!("the file ends inside the {rank} extents")))?;
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();

    // Values: exactly numel * size bytes.
    let numel: usize = shape.iter().product();
    let body = &bytes[data_start..];
    if body.len() < numel * size {
        let have = body.len() / size;
        let problem = format!("the file is truncated: it holds {have} of {numel} values");
        let fix = "copy or download the file again (completely)";
        return Err(Error::data(
            file,
            format!("flat index {have}"),
            problem,
            fix,
        ));
    }
    if body.len() > numel * size {
        let problem = format!(
            "{} bytes follow the {numel} values",
            body.len() - numel * size
        );
        let fix = "check that the header's extents match the data";
        return Err(Error::data(file, "end of data", problem, fix));
    }
    let values: Vec<f64> = body
        .chunks_exact(size)
        .map(|b| match code {
            0x08 => b[0] as f64,
            0x09 => b[0] as i8 as f64,
            0x0B => i16::from_be_bytes([b[0], b[1]]) as f64,
            0x0C => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            0x0D => f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            _ => f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        })
        .collect();
    check_finite(file, &values)?;

    Ok(Array {
        shape,
        values,
        levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_int_file_reads_big_endian() {
        let mut bytes = vec![0, 0, 0x0C, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        bytes.extend_from_slice(&(-7_i32).to_be_bytes());
        bytes.extend_from_slice(&70_000_i32.to_be_bytes());
        let array = parse_idx(&"t-idx2-int", &bytes).unwrap();
        assert_eq!(array.shape, [1, 2]);
        assert_eq!(array.values, [-7.0, 70_000.0]);
        assert_eq!(array.levels, None);
    }
}
