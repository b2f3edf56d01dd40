//! Comma-separated numbers, one sample per line, with an optional header line.

use super::{Array, empty};
use crate::Error;
use std::fmt::Display;

/// Parses CSV text: every field a number; the first content line is a header (and skipped)
/// when none of its fields is a number; blank lines and lines starting with `#` are skipped.
pub(super) fn parse_csv(file: &dyn Display, bytes: &[u8]) -> Result<Array, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let location = format!("byte {}", e.valid_up_to());
        let fix = "save the file as UTF-8 (or ASCII) text";
        Error::data(file, location, "the file is not UTF-8 text", fix)
    })?;

    let mut values = Vec::new();
    let mut width: Option<(usize, usize)> = None; // (fields per row, line that set it)
    let mut rows = 0;
    let mut first_content = true;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }

        // A header: the first content line, with no field that reads as a number.
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if std::mem::take(&mut first_content) && fields.iter().all(|f| f.parse::<f64>().is_err()) {
            continue;
        }

        // Every row as wide as the first.
        match width {
            None => width = Some((fields.len(), number)),
            Some((w, first)) if w != fields.len() => {
                let problem = format!("{} fields, but line {first} has {w}", fields.len());
                let fix = "give every row the same number of comma-separated values";
                return Err(Error::data(file, format!("line {number}"), problem, fix));
            }
            Some(_) => {}
        }

        for (column, field) in fields.iter().enumerate() {
            let location = || format!("line {number}, column {}", column + 1);
            let value: f64 = field.parse().map_err(|_| {
                let problem = format!("{field:?} is not a number");
                let fix = "write plain numbers (such as 1.5 or -2e-3), or remove the line";
                Error::data(file, location(), problem, fix)
            })?;
            if !value.is_finite() {
                let problem = format!("the value is {value}");
                let fix = "remove or repair the samples with non-finite values before loading";
                return Err(Error::data(file, location(), problem, fix));
            }
            values.push(value);
        }
        rows += 1;
    }

    match width {
        Some((w, _)) => Ok(Array {
            shape: vec![rows, w],
            values,
            levels: None,
        }),
        None => Err(empty(file, "no line of numbers")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_comments_and_blank_lines_are_skipped() {
        let text = b"# made by hand\nx, y\n\n1, 2\r\n3,4e0\n";
        let array = parse_csv(&"t.csv", text).unwrap();
        assert_eq!(array.shape, [2, 2]);
        assert_eq!(array.values, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn text_after_the_first_line_is_an_error_at_its_column() {
        let err = parse_csv(&"t.csv", b"1,2\n3,abc\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.csv: line 2, column 2"), "{err}");
    }

    #[test]
    fn a_first_line_with_some_numbers_is_data_not_a_header() {
        let err = parse_csv(&"t.csv", b"1,x\n3,4\n").unwrap_err().to_string();
        assert!(err.contains("line 1, column 2"), "{err}");
    }
}
