//! A query's answer as a table, filled row by row within the source's row
//! and byte limits, and shown to the model as a Markdown table.

use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ResultTable {
    pub columns: Vec<String>,
    /// Cells as text; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// The query had more rows than the source's `max_rows`.
    pub more_rows: bool,
    /// Rows were left out to stay within the source's `max_bytes`.
    pub cut_for_size: bool,
}

/// Longest single cell kept; a longer one ends with `…`.
const MAX_CELL_BYTES: usize = 2_000;

fn cut_cell(mut text: String) -> String {
    if text.len() > MAX_CELL_BYTES {
        let mut end = MAX_CELL_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Fills a table, refusing rows past the limits.
pub(crate) struct TableBuilder {
    table: ResultTable,
    max_rows: usize,
    max_bytes: usize,
    bytes: usize,
}

impl TableBuilder {
    pub fn new(columns: Vec<String>, max_rows: u32, max_bytes: u32) -> Self {
        let bytes = columns.iter().map(|c| c.len() + 3).sum();
        Self {
            table: ResultTable {
                columns,
                ..ResultTable::default()
            },
            max_rows: max_rows as usize,
            max_bytes: max_bytes as usize,
            bytes,
        }
    }

    pub fn set_columns(&mut self, columns: Vec<String>) {
        if self.table.columns.is_empty() {
            self.bytes = columns.iter().map(|c| c.len() + 3).sum();
            self.table.columns = columns;
        }
    }

    /// Adds a row; `false` once the table is full (stop reading).
    pub fn push(&mut self, row: Vec<Option<String>>) -> bool {
        if self.table.rows.len() >= self.max_rows {
            self.table.more_rows = true;
            return false;
        }
        let row: Vec<Option<String>> = row.into_iter().map(|c| c.map(cut_cell)).collect();
        let size: usize = row
            .iter()
            .map(|c| c.as_ref().map_or(4, String::len) + 3)
            .sum::<usize>()
            + 2;
        if self.bytes + size > self.max_bytes {
            self.table.cut_for_size = true;
            return false;
        }
        self.bytes += size;
        self.table.rows.push(row);
        true
    }

    pub fn finish(self) -> ResultTable {
        self.table
    }
}

fn escape(cell: &str) -> String {
    cell.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\r', "")
        .replace('\n', "\\n")
}

impl ResultTable {
    /// The table as the model reads it: a Markdown table and a line saying
    /// how many rows there are and whether any were left out.
    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        let n = self.rows.len();
        let summary = if self.more_rows {
            format!("source `{source}`: the first {n} rows (there are more; aggregate, filter or page with LIMIT/OFFSET)")
        } else if self.cut_for_size {
            format!("source `{source}`: the first {n} rows (the rest were cut to keep the answer small; select fewer columns or rows)")
        } else {
            format!(
                "source `{source}`: {n} row{}",
                if n == 1 { "" } else { "s" }
            )
        };
        out.push_str(&summary);
        out.push('\n');
        if self.columns.is_empty() {
            return out;
        }
        out.push_str("| ");
        out.push_str(
            &self
                .columns
                .iter()
                .map(|c| escape(c))
                .collect::<Vec<_>>()
                .join(" | "),
        );
        out.push_str(" |\n|");
        out.push_str(&"---|".repeat(self.columns.len()));
        out.push('\n');
        for row in &self.rows {
            out.push_str("| ");
            out.push_str(
                &row.iter()
                    .map(|c| c.as_deref().map_or_else(|| "NULL".to_owned(), escape))
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
            out.push_str(" |\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stop_at_the_row_limit_and_say_so() {
        let mut b = TableBuilder::new(vec!["n".into()], 2, 10_000);
        assert!(b.push(vec![Some("1".into())]));
        assert!(b.push(vec![None]));
        assert!(!b.push(vec![Some("3".into())]));
        let t = b.finish();
        assert_eq!(t.rows.len(), 2);
        assert!(t.more_rows);
        let text = t.render("wh");
        assert!(text.contains("first 2 rows"), "{text}");
        assert!(text.contains("| NULL |"), "{text}");
    }

    #[test]
    fn rows_stop_at_the_byte_limit_and_cells_escape_the_table() {
        let mut b = TableBuilder::new(vec!["note".into()], 100, 1024);
        let mut pushed = 0;
        while b.push(vec![Some("a|b\nc".repeat(20))]) {
            pushed += 1;
        }
        let t = b.finish();
        assert!(t.cut_for_size && pushed > 0 && pushed < 100);
        let text = t.render("wh");
        assert!(text.len() < 1500, "{}", text.len());
        assert!(text.contains("a\\|b\\nc"));
        assert_eq!(text.lines().nth(1), Some("| note |"));
    }
}
