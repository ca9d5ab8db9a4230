//! The allow-list: which tables (and, optionally, which of their columns)
//! a source's agents may read. Written `TABLE`, `SCHEMA.TABLE` or
//! `TABLE(COL,COL)`, several to an entry separated by commas.

use crate::SqlError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllowedTable {
    /// The schema (PostgreSQL), database (MySQL) or `main` (SQLite); filled
    /// in from the database at registration when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub table: String,
    /// Only these columns; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

impl AllowedTable {
    /// True when a query's reference `[schema.]table` names this table.
    /// Unquoted names compare without case, as the databases fold them; the
    /// database's own grants are exact.
    pub fn matches(&self, schema: Option<&str>, table: &str) -> bool {
        if !self.table.eq_ignore_ascii_case(table) {
            return false;
        }
        match (schema, &self.schema) {
            (None, _) => true,
            (Some(wanted), Some(own)) => own.eq_ignore_ascii_case(wanted),
            (Some(_), None) => false,
        }
    }

    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.table),
            None => self.table.clone(),
        }
    }
}

impl std::fmt::Display for AllowedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.qualified())?;
        if let Some(columns) = &self.columns {
            write!(f, "({})", columns.join(","))?;
        }
        Ok(())
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-')
}

/// Splits on commas outside parentheses.
fn split_entries(text: &str) -> Result<Vec<&str>, SqlError> {
    let mut parts = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    SqlError::Invalid(format!("unbalanced `)` in allow-list `{text}`"))
                })?
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SqlError::Invalid(format!(
            "unbalanced `(` in allow-list `{text}`"
        )));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_entry(entry: &str) -> Result<AllowedTable, SqlError> {
    let bad = |why: &str| {
        SqlError::Invalid(format!(
            "allow-list entry `{entry}`: {why} (write TABLE, SCHEMA.TABLE or TABLE(COL,COL))"
        ))
    };
    let entry = entry.trim();
    let (name, columns) = match entry.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| bad("text after the column list"))?;
            let columns: Vec<String> = inner.split(',').map(|c| c.trim().to_owned()).collect();
            if columns.iter().any(|c| !is_identifier(c)) {
                return Err(bad("a column name is empty or has characters other than letters, digits, `_`, `$` and `-`"));
            }
            (name.trim(), Some(columns))
        }
        None => (entry, None),
    };
    let (schema, table) = match name.split_once('.') {
        Some((schema, table)) => (Some(schema.trim()), table.trim()),
        None => (None, name),
    };
    if !is_identifier(table) || schema.is_some_and(|s| !is_identifier(s)) {
        return Err(bad(
            "names are letters, digits, `_`, `$` and `-`, with at most one `.`",
        ));
    }
    Ok(AllowedTable {
        schema: schema.map(str::to_owned),
        table: table.to_owned(),
        columns,
    })
}

/// Parses the allow-list; at least one table, none twice.
pub fn parse_allow_list(entries: &[String]) -> Result<Vec<AllowedTable>, SqlError> {
    let mut out: Vec<AllowedTable> = Vec::new();
    for entry in entries {
        for part in split_entries(entry)? {
            if part.trim().is_empty() {
                continue;
            }
            let table = parse_entry(part)?;
            if out.iter().any(|t| {
                t.matches(table.schema.as_deref(), &table.table) && t.schema == table.schema
            }) {
                return Err(SqlError::Invalid(format!(
                    "allow-list names `{}` twice",
                    table.qualified()
                )));
            }
            out.push(table);
        }
    }
    if out.is_empty() {
        return Err(SqlError::Invalid(
            "allow lists at least one table the agents may read".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&str]) -> Result<Vec<AllowedTable>, SqlError> {
        parse_allow_list(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn tables_schemas_and_columns_parse() {
        let list = parse(&["orders, sales.customers(id, name)", "products"]).expect("parses");
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].table, "orders");
        assert_eq!(list[1].schema.as_deref(), Some("sales"));
        assert_eq!(
            list[1].columns.as_deref(),
            Some(&["id".to_owned(), "name".to_owned()][..])
        );
        assert_eq!(list[1].to_string(), "sales.customers(id,name)");
    }

    #[test]
    fn malformed_lists_say_what_is_wrong() {
        for bad in [
            &[""][..],
            &["orders(id"],
            &["orders)"],
            &["orders(id,)"],
            &["a.b.c"],
            &["drop table x"],
            &["orders", "ORDERS"],
            &["orders(id) x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn references_match_without_case_and_respect_schemas() {
        let t = AllowedTable {
            schema: Some("public".into()),
            table: "orders".into(),
            columns: None,
        };
        assert!(t.matches(None, "Orders"));
        assert!(t.matches(Some("PUBLIC"), "orders"));
        assert!(!t.matches(Some("private"), "orders"));
        assert!(!t.matches(None, "orders2"));
    }
}
