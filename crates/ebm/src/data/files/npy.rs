//! NumPy `.npy` files, format versions 1.0, 2.0 and 3.0.
//!
//! Layout: the magic `\x93NUMPY`, a major and a minor version byte, the header length
//! (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3), a header that is a
//! Python dict literal such as `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`,
//! then the raw values.

use super::{Array, check_finite};
use crate::Error;
use std::fmt::Display;

const MAGIC: &[u8] = b"\x93NUMPY";
/// What to tell a user whose array numpy must convert first.
const CONVERT: &str = "convert it in numpy first: np.save(path, np.ascontiguousarray(a, '<f8'))";

/// The element types that are read, by their NumPy code (without the byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    F4,
    F8,
    U1,
    I1,
    U2,
    I2,
    U4,
    I4,
    U8,
    I8,
    B1,
}

impl Dtype {
    /// The type from a `descr` such as `<f8` or `|u1`, or the reason it is not read.
    fn parse(descr: &str) -> Result<Dtype, String> {
        let (order, code) = descr.split_at_checked(1).ok_or("an empty type")?;
        let dtype = match code {
            "f4" => Dtype::F4,
            "f8" => Dtype::F8,
            "u1" => Dtype::U1,
            "i1" => Dtype::I1,
            "u2" => Dtype::U2,
            "i2" => Dtype::I2,
            "u4" => Dtype::U4,
            "i4" => Dtype::I4,
            "u8" => Dtype::U8,
            "i8" => Dtype::I8,
            "b1" => Dtype::B1,
            _ => return Err(format!("element type {descr:?} is not supported")),
        };
        let one_byte = dtype.size() == 1;
        match order {
            "<" | "=" => Ok(dtype),
            "|" if one_byte => Ok(dtype),
            ">" if one_byte => Ok(dtype),
            ">" => Err(format!("element type {descr:?} is big-endian")),
            _ => Err(format!("element type {descr:?} has an unknown byte order")),
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::U1 | Dtype::I1 | Dtype::B1 => 1,
            Dtype::U2 | Dtype::I2 => 2,
            Dtype::F4 | Dtype::U4 | Dtype::I4 => 4,
            Dtype::F8 | Dtype::U8 | Dtype::I8 => 8,
        }
    }

    /// The element stored little-endian in `b` (exactly `size` bytes), as `f64`.
    fn read(self, b: &[u8]) -> f64 {
        let a = |n: usize| -> [u8; 8] {
            let mut out = [0; 8];
            out[..n].copy_from_slice(&b[..n]);
            out
        };
        match self {
            Dtype::F4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Dtype::F8 => f64::from_le_bytes(a(8)),
            Dtype::U1 => b[0] as f64,
            Dtype::I1 => b[0] as i8 as f64,
            Dtype::U2 => u16::from_le_bytes([b[0], b[1]]) as f64,
            Dtype::I2 => i16::from_le_bytes([b[0], b[1]]) as f64,
            Dtype::U4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Dtype::I4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Dtype::U8 => u64::from_le_bytes(a(8)) as f64,
            Dtype::I8 => i64::from_le_bytes(a(8)) as f64,
            Dtype::B1 => (b[0] != 0) as u8 as f64,
        }
    }

    /// The number of levels of quantised types (bytes and booleans).
    fn levels(self) -> Option<u32> {
        match self {
            Dtype::U1 => Some(256),
            Dtype::B1 => Some(2),
            _ => None,
        }
    }
}

/// Parses the bytes of an `.npy` file.
pub(super) fn parse_npy(file: &dyn Display, bytes: &[u8]) -> Result<Array, Error> {
    let header_err = |problem: String, fix: &str| Error::data(file, "header", problem, fix);
    let rewrite = "write the file again with np.save";

    // Magic, version, header length.
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        let problem = "the file does not start with the NPY magic \\x93NUMPY".to_string();
        return Err(header_err(problem, "give a file written by np.save"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => {
            let problem = format!("format version {major}.{minor} is not supported");
            return Err(header_err(
                problem,
                "save with numpy's default format (1.0)",
            ));
        }
    };
    if bytes.len() < start {
        return Err(header_err(
            "the file ends inside the header".into(),
            rewrite,
        ));
    }
    let mut len = [0_u8; 4];
    len[..len_bytes].copy_from_slice(&bytes[8..8 + len_bytes]);
    let end = start + u32::from_le_bytes(len) as usize;
    let header = bytes
        .get(start..end)
        .ok_or_else(|| header_err("the file ends inside the header".into(), rewrite))?;
    let header = std::str::from_utf8(header)
        .map_err(|_| header_err("the header is not text".into(), rewrite))?;

    // The dict's three keys.
    let missing = |key: &str| header_err(format!("no {key:?} in the header {header:?}"), rewrite);
    let descr = dict_value(header, "descr").ok_or_else(|| missing("descr"))?;
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| missing("fortran_order"))?;
    let shape = dict_value(header, "shape").ok_or_else(|| missing("shape"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = Dtype::parse(descr).map_err(|problem| header_err(problem, CONVERT))?;
    if fortran == "True" {
        let problem = "the array is in Fortran (column-major) order".to_string();
        return Err(header_err(problem, CONVERT));
    }
    let shape = parse_shape(shape)
        .ok_or_else(|| header_err(format!("cannot read the shape {shape:?}"), rewrite))?;

    // The values: exactly numel * size bytes.
    let numel: usize = shape.iter().product();
    let body = &bytes[end..];
    let size = dtype.size();
    if body.len() < numel * size {
        let have = body.len() / size;
        let location = format!("flat index {have}");
        let problem = format!("the file is truncated: it holds {have} of {numel} values");
        let fix = "copy or write the file again (completely)";
        return Err(Error::data(file, location, problem, fix));
    }
    if body.len() > numel * size {
        let problem = format!(
            "{} bytes follow the {numel} values",
            body.len() - numel * size
        );
        return Err(Error::data(file, "end of data", problem, rewrite));
    }
    let values: Vec<f64> = body.chunks_exact(size).map(|b| dtype.read(b)).collect();
    check_finite(file, &values)?;

    Ok(Array {
        shape,
        values,
        levels: dtype.levels(),
    })
}

/// The text of `key`'s value in a Python dict literal: a quoted string, a tuple, or a bare
/// word (`True`), trimmed.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let after_key = ["'", "\""].iter().find_map(|q| {
        let quoted = format!("{q}{key}{q}");
        header.find(&quoted).map(|i| &header[i + quoted.len()..])
    })?;
    let value = after_key.trim_start().strip_prefix(':')?.trim_start();
    let end = match value.chars().next()? {
        '(' => value.find(')')? + 1,
        q @ ('\'' | '"') => value[1..].find(q)? + 2,
        _ => value.find([',', '}']).unwrap_or(value.len()),
    };
    Some(value[..end].trim())
}

/// `(3, 4)`, `(5,)` or `()` as extents.
fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_read_from_the_dict() {
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
        assert_eq!(dict_value(h, "descr"), Some("'<f8'"));
        assert_eq!(dict_value(h, "fortran_order"), Some("False"));
        assert_eq!(
            parse_shape(dict_value(h, "shape").unwrap()),
            Some(vec![3, 4])
        );
        assert_eq!(parse_shape("(5,)"), Some(vec![5]));
        assert_eq!(parse_shape("()"), Some(vec![]));
    }

    #[test]
    fn byte_orders_and_codes() {
        assert_eq!(Dtype::parse("<i4"), Ok(Dtype::I4));
        assert_eq!(Dtype::parse("|u1"), Ok(Dtype::U1));
        assert!(Dtype::parse(">f8").unwrap_err().contains("big-endian"));
        assert!(Dtype::parse("<c16").unwrap_err().contains("not supported"));
        assert_eq!(Dtype::I2.read(&(-300_i16).to_le_bytes()), -300.0);
    }
}
