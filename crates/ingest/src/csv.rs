//! Rendering CSV/TSV tables as self-contained lines of text, one per data
//! row: `name: Ada; team: Core`, header names repeated on every line so
//! any group of rows can be read (and retrieved) on its own.
//!
//! Policy: a header row is required. Rows may be shorter than the header
//! (exports often drop trailing empty cells); rows longer than the header
//! are refused unless the extra cells are empty, because unlabeled values
//! usually mean a quoting or delimiter mistake. Empty cells are left out;
//! whitespace inside a cell, including quoted newlines, is collapsed to
//! single spaces so one row is always one line. This module must never
//! drop a non-empty cell silently.

use ::csv::{ReaderBuilder, StringRecord};

use crate::{DocumentKind, IngestError};

/// The rendered table: `text` holds one line per non-empty data row.
#[derive(Debug)]
pub(crate) struct Table {
    pub text: String,
    /// Byte offset in `text` where each rendered row starts.
    pub row_starts: Vec<usize>,
    /// 1-based data-row number (header excluded) of each rendered row.
    pub row_numbers: Vec<u64>,
}

/// Tab for `.tsv` or a tab-separated content type; otherwise whichever
/// of comma, semicolon or tab the header line uses most (semicolons are
/// the norm in locales with decimal commas). Commas win ties.
pub(crate) fn delimiter(path: &str, content_type: Option<&str>, text: &str) -> u8 {
    let tsv_type =
        content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("tab-separated-values"));
    if crate::detect::extension(path).as_deref() == Some("tsv") || tsv_type {
        return b'\t';
    }
    let header = text.lines().next().unwrap_or("");
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in header.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(slot) = counts.iter_mut().find(|(d, _)| *d == b) {
                slot.1 += 1;
            }
        }
    }
    let mut best = counts[0];
    for c in &counts[1..] {
        if c.1 > best.1 {
            best = *c;
        }
    }
    best.0
}

pub(crate) fn render(path: &str, text: &str, delimiter: u8) -> Result<Table, IngestError> {
    let malformed = |reason: String| IngestError::malformed(path, DocumentKind::Csv, reason);
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| malformed(describe(&e)))?
        .clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(malformed(
            "the first line must be a header row naming the columns".into(),
        ));
    }
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| match h.trim() {
            "" => format!("column {}", i + 1),
            h => h.to_owned(),
        })
        .collect();

    let mut table = Table {
        text: String::with_capacity(text.len() + text.len() / 2),
        row_starts: Vec::new(),
        row_numbers: Vec::new(),
    };
    let mut record = StringRecord::new();
    let mut row = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(malformed(describe(&e))),
        }
        row += 1;
        if record.len() > names.len()
            && record
                .iter()
                .skip(names.len())
                .any(|v| !v.trim().is_empty())
        {
            let line = record.position().map_or(0, |p| p.line());
            return Err(malformed(format!(
                "line {line} has {} fields but the header has {}",
                record.len(),
                names.len()
            )));
        }
        let start = table.text.len();
        if start > 0 {
            table.text.push('\n');
        }
        let line_start = table.text.len();
        let mut wrote = false;
        for (name, value) in names.iter().zip(record.iter()) {
            if value.trim().is_empty() {
                continue;
            }
            if wrote {
                table.text.push_str("; ");
            }
            table.text.push_str(name);
            table.text.push_str(": ");
            push_collapsed(&mut table.text, value);
            wrote = true;
        }
        if wrote {
            table.row_starts.push(line_start);
            table.row_numbers.push(row);
        } else {
            table.text.truncate(start);
        }
    }
    Ok(table)
}

fn push_collapsed(out: &mut String, value: &str) {
    for (i, word) in value.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

fn describe(e: &::csv::Error) -> String {
    match e.position() {
        Some(p) => format!("line {}: {e}", p.line()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<String> {
        render("t.csv", text, b',')
            .expect("render")
            .text
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn rows_repeat_header_names() {
        assert_eq!(
            rows("name,team\nAda,Core\nGrace,Compilers\n"),
            ["name: Ada; team: Core", "name: Grace; team: Compilers"]
        );
    }

    #[test]
    fn quoted_newlines_stay_in_one_row() {
        let t = render(
            "t.csv",
            "id,note\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n",
            b',',
        )
        .expect("render");
        assert_eq!(t.text, "id: 1; note: two lines\nid: 2; note: say \"hi\"");
        assert_eq!(t.row_numbers, [1, 2]);
        assert_eq!(t.row_starts, [0, t.text.find("id: 2").expect("found")]);
    }

    #[test]
    fn ragged_rows_and_empty_cells() {
        assert_eq!(
            rows("a,b,,d\n1,,3\n,,,\n5,6,7,8,\n"),
            ["a: 1; column 3: 3", "a: 5; b: 6; column 3: 7; d: 8"]
        );
        let t = render("t.csv", "a\n1\n,\n3\n", b',').expect("render");
        assert_eq!(t.row_numbers, [1, 3]);
    }

    #[test]
    fn extra_fields_are_malformed_with_line() {
        let err = render("t.csv", "a,b\n1,2\n\"x\ny\",2,3\n", b',').expect_err("malformed");
        assert_eq!(err.code(), "malformed_document");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn header_is_required() {
        let err = render("t.csv", ",,\n1,2,3\n", b',').expect_err("no header");
        assert_eq!(err.code(), "malformed_document");
    }

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(delimiter("a.csv", None, "a;b;c\n1;2;3"), b';');
        assert_eq!(delimiter("a.csv", None, "a,b\n"), b',');
        assert_eq!(delimiter("a.csv", None, "\"x;y\",b\n"), b',');
        assert_eq!(delimiter("a.tsv", None, "a,b\n"), b'\t');
        assert_eq!(
            delimiter("a", Some("text/tab-separated-values"), "a,b"),
            b'\t'
        );
        assert_eq!(delimiter("a.csv", None, "a\tb\tc\n"), b'\t');
    }
}
