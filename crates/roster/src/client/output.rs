//! Output helpers shared by the client commands: tables, one-line
//! truncation, pretty JSON, timestamps and dimmed text.

use anyhow::Result;
use serde_json::Value;
use std::io::IsTerminal;

/// Prints a value as indented JSON on stdout.
pub fn print_json(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths.get(i).copied().unwrap_or(0);
                line.extend(std::iter::repeat_n(
                    ' ',
                    pad.saturating_sub(cell.chars().count()),
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The text on one line (newlines shown as `\n`), cut to `max` characters
/// with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = text.replace("\r\n", "\\n").replace(['\n', '\r'], "\\n");
    truncate(&flat, max)
}

/// Cuts to `max` characters, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Indents every line after the first by `indent` spaces, so multi-line text
/// stays under its label.
pub fn hang(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 || line.is_empty() {
                line.to_owned()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `2025-01-31 12:00:00` (UTC) from a timestamp's `Display`
/// (`2025-01-31 12:00:00.123456 UTC`), without the fraction.
pub fn time(t: &impl std::fmt::Display) -> String {
    let shown = t.to_string();
    match shown.get(..19) {
        Some(head) if shown.len() > 19 => head.to_owned(),
        _ => shown,
    }
}

/// Dims text with ANSI codes when the stream is a terminal and `NO_COLOR`
/// is unset.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    dim: bool,
}

impl Style {
    pub fn for_stderr() -> Style {
        Style {
            dim: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub fn for_stdout() -> Style {
        Style {
            dim: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub fn dim(self, text: &str) -> String {
        if self.dim {
            format!("\x1b[2m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "ID"],
            &[
                vec!["a".into(), "x".into()],
                vec!["long".into(), "y".into()],
            ],
        );
        assert_eq!(t, "NAME  ID\na     x\nlong  y\n");
    }

    #[test]
    fn truncation() {
        assert_eq!(one_line("a\nb", 10), "a\\nb");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
