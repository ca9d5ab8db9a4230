//! SQL text written once, in PostgreSQL's spelling, and rendered for each
//! dialect the first time it runs.
//!
//! Roughly nine statements in ten read the same on both backends once
//! placeholders are normalised, so the store writes each statement once and
//! this module rewrites the few constructs SQLite spells differently:
//! - `$N` placeholders become `?N` (SQLite would read `$1` as a *named*
//!   parameter and number it by first appearance, not by `N`);
//! - ` FOR UPDATE` (a row lock PostgreSQL needs between nodes) is dropped:
//!   SQLite has one writer, so every write is already serialised;
//! - `= ANY($N)` and `<> ALL($N)` (an array parameter) become
//!   `IN (SELECT value FROM json_each(?N))` and `NOT IN (…)`; the executor
//!   binds list arguments to SQLite as a JSON array;
//! - `strpos(` (substring position) becomes SQLite's `instr(`, which takes
//!   the same arguments and answers the same 1-based position or 0.
//!
//! Statements that really differ are written twice with [`Sql::pick`]; the
//! unit tests below render every rule for both dialects.

use std::sync::OnceLock;

/// Which SQL dialect an executor speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One statement, rendered lazily and cached per dialect, so the hot path
/// pays for rendering once per process.
pub struct Sql {
    source: fn() -> String,
    /// Source used only by SQLite, for the rare statement written twice.
    sqlite_source: Option<fn() -> String>,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl Sql {
    pub const fn new(source: fn() -> String) -> Self {
        Self {
            source,
            sqlite_source: None,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// A statement that genuinely differs: `postgres` as written, `sqlite`
    /// with the same placeholder rules applied.
    pub const fn pick(postgres: fn() -> String, sqlite: fn() -> String) -> Self {
        Self {
            source: postgres,
            sqlite_source: Some(sqlite),
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    pub fn text(&self, dialect: Dialect) -> &str {
        match dialect {
            Dialect::Postgres => self.postgres.get_or_init(self.source),
            Dialect::Sqlite => self
                .sqlite
                .get_or_init(|| to_sqlite(&(self.sqlite_source.unwrap_or(self.source))())),
        }
    }
}

/// A cached statement: `sql!("SELECT … WHERE id = $1")`, with `format!`
/// arguments for shared column lists (`sql!("SELECT {COLUMNS} FROM t")`).
#[macro_export]
#[doc(hidden)]
macro_rules! sql {
    ($($format:tt)+) => {{
        static STATEMENT: $crate::Sql = $crate::Sql::new(|| format!($($format)+));
        &STATEMENT
    }};
}

/// A statement written once per dialect: `sql_pick!(postgres: "…", sqlite: "…")`.
#[macro_export]
#[doc(hidden)]
macro_rules! sql_pick {
    (postgres: $pg:expr, sqlite: $lite:expr $(,)?) => {{
        static STATEMENT: $crate::Sql =
            $crate::Sql::pick(|| ($pg).to_string(), || ($lite).to_string());
        &STATEMENT
    }};
}

/// Rewrites PostgreSQL spelling into SQLite's (see the module docs).
pub(crate) fn to_sqlite(postgres: &str) -> String {
    let text = strip_row_locks(postgres).replace("strpos(", "instr(");
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text.as_str();
    while let Some(at) = rest.find(['$', '=', '<']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        if let Some((n, after)) = list_membership(from, "= ANY(") {
            out.push_str(&format!("IN (SELECT value FROM json_each(?{n}))"));
            rest = after;
        } else if let Some((n, after)) = list_membership(from, "<> ALL(") {
            out.push_str(&format!("NOT IN (SELECT value FROM json_each(?{n}))"));
            rest = after;
        } else if let Some((n, after)) = placeholder(from) {
            out.push('?');
            out.push_str(n);
            rest = after;
        } else {
            let width = from.chars().next().map_or(1, char::len_utf8);
            out.push_str(&from[..width]);
            rest = &from[width..];
        }
    }
    out.push_str(rest);
    out
}

/// Drops ` FOR UPDATE`, with its `OF table, …` and `SKIP LOCKED`/`NOWAIT`.
fn strip_row_locks(text: &str) -> String {
    const LOCK: &str = " FOR UPDATE";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(LOCK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + LOCK.len()..];
        if let Some(tables) = rest.strip_prefix(" OF ") {
            rest = skip_table_list(tables);
        }
        for wait in [" SKIP LOCKED", " NOWAIT"] {
            rest = rest.strip_prefix(wait).unwrap_or(rest);
        }
    }
    out.push_str(rest);
    out
}

/// What follows `table, table, …` at the start of `text`.
fn skip_table_list(text: &str) -> &str {
    let mut rest = text;
    loop {
        let name = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(rest.len());
        rest = &rest[name..];
        match rest.strip_prefix(',') {
            Some(more) => rest = more.trim_start_matches(' '),
            None => return rest,
        }
    }
}

/// `$N` at the start of `text`: the digits and what follows them.
fn placeholder(text: &str) -> Option<(&str, &str)> {
    let digits = text.strip_prefix('$')?;
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    (len > 0).then(|| digits.split_at(len))
}

/// `<prefix>$N)` at the start of `text`: `N` and what follows the `)`.
fn list_membership<'t>(text: &'t str, prefix: &str) -> Option<(&'t str, &'t str)> {
    let (n, after) = placeholder(text.strip_prefix(prefix)?)?;
    Some((n, after.strip_prefix(')')?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(sql: &Sql) -> (&str, &str) {
        (sql.text(Dialect::Postgres), sql.text(Dialect::Sqlite))
    }

    #[test]
    fn placeholders_keep_their_numbers() {
        let (pg, lite) = both(sql!("SELECT a FROM t WHERE b = $2 AND c = $10 AND d = $1"));
        assert_eq!(pg, "SELECT a FROM t WHERE b = $2 AND c = $10 AND d = $1");
        assert_eq!(lite, "SELECT a FROM t WHERE b = ?2 AND c = ?10 AND d = ?1");
    }

    #[test]
    fn substring_position_is_instr_on_sqlite() {
        let (pg, lite) = both(sql!("SELECT a FROM t WHERE strpos(actor, $1) > 0"));
        assert_eq!(pg, "SELECT a FROM t WHERE strpos(actor, $1) > 0");
        assert_eq!(lite, "SELECT a FROM t WHERE instr(actor, ?1) > 0");
    }

    #[test]
    fn row_locks_exist_only_on_postgres() {
        let (pg, lite) = both(sql!("SELECT status FROM runs WHERE id = $1 FOR UPDATE"));
        assert_eq!(pg, "SELECT status FROM runs WHERE id = $1 FOR UPDATE");
        assert_eq!(lite, "SELECT status FROM runs WHERE id = ?1");
    }

    #[test]
    fn row_locks_with_their_tables_and_wait_policy_are_dropped_on_sqlite() {
        let (_, lite) = both(sql!(
            "SELECT a FROM r JOIN s ON s.id = r.s WHERE r.id = $1 FOR UPDATE OF r, s"
        ));
        assert_eq!(lite, "SELECT a FROM r JOIN s ON s.id = r.s WHERE r.id = ?1");
        let (_, lite) = both(sql!(
            "SELECT a FROM r WHERE id = $1 FOR UPDATE OF r, s LIMIT 1"
        ));
        assert_eq!(lite, "SELECT a FROM r WHERE id = ?1 LIMIT 1");
        let (_, lite) = both(sql!(
            "SELECT a FROM t WHERE b = $1 FOR UPDATE SKIP LOCKED LIMIT 1"
        ));
        assert_eq!(lite, "SELECT a FROM t WHERE b = ?1 LIMIT 1");
    }

    #[test]
    fn array_parameters_become_json_lists_on_sqlite() {
        let (pg, lite) = both(sql!(
            "SELECT x FROM t WHERE a = ANY($3) AND b <> ALL($4) AND c <> $5"
        ));
        assert_eq!(
            pg,
            "SELECT x FROM t WHERE a = ANY($3) AND b <> ALL($4) AND c <> $5"
        );
        assert_eq!(
            lite,
            "SELECT x FROM t WHERE a IN (SELECT value FROM json_each(?3)) AND b NOT IN (SELECT value FROM json_each(?4)) AND c <> ?5"
        );
    }

    #[test]
    fn text_outside_the_rules_is_untouched() {
        let (_, lite) = both(sql!(
            "SELECT '$' || name, 'é', a <= b, c >= $1, price$ FROM t"
        ));
        assert_eq!(
            lite,
            "SELECT '$' || name, 'é', a <= b, c >= ?1, price$ FROM t"
        );
    }

    #[test]
    fn shared_column_lists_are_spliced_in() {
        const COLUMNS: &str = "id, name";
        let (pg, lite) = both(sql!("SELECT {COLUMNS} FROM t WHERE id = $1"));
        assert_eq!(pg, "SELECT id, name FROM t WHERE id = $1");
        assert_eq!(lite, "SELECT id, name FROM t WHERE id = ?1");
    }

    #[test]
    fn a_statement_written_twice_renders_each_version() {
        let (pg, lite) = both(sql_pick!(
            postgres: "SELECT starts_with(a, $1)",
            sqlite: "SELECT substr(a, 1, length($1)) = $1",
        ));
        assert_eq!(pg, "SELECT starts_with(a, $1)");
        assert_eq!(lite, "SELECT substr(a, 1, length(?1)) = ?1");
    }
}
