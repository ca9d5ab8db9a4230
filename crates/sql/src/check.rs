//! The check every query passes before it is sent: one statement, a query
//! and nothing else (no writes, no `SELECT … INTO`, no row locks), naming
//! only allow-listed tables; the row limit is written into it. What runs is
//! the statement as parsed and printed again, so what was checked is what
//! the database sees.
//!
//! The databases enforce read-only access and the allow-list themselves
//! (see the crate docs); this check exists to refuse early and clearly.

use crate::allow::AllowedTable;
use crate::SqlError;
use sqlparser::ast::{
    Expr, LimitClause, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor, Value,
    Visit, Visitor,
};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use std::collections::HashSet;
use std::ops::ControlFlow;

#[derive(Clone, Copy, Debug)]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

/// Longest query text accepted.
const MAX_QUERY_LEN: usize = 64 * 1024;

struct Inspector<'a> {
    allow: &'a [AllowedTable],
    ctes: HashSet<String>,
    refused: Option<String>,
}

fn refuse(inspector: &mut Inspector<'_>, why: String) -> ControlFlow<()> {
    inspector.refused = Some(why);
    ControlFlow::Break(())
}

fn body_kind(body: &SetExpr) -> Option<&'static str> {
    match body {
        SetExpr::Insert(_) => Some("INSERT"),
        SetExpr::Update(_) => Some("UPDATE"),
        SetExpr::Delete(_) => Some("DELETE"),
        SetExpr::Merge(_) => Some("MERGE"),
        _ => None,
    }
}

fn check_relation(inspector: &mut Inspector<'_>, name: &ObjectName) -> ControlFlow<()> {
    let mut parts = Vec::new();
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(ident) => parts.push(ident.value.as_str()),
            ObjectNamePart::Function(_) => {
                return refuse(inspector, format!("`{name}` is not a table name"))
            }
        }
    }
    let (schema, table) = match parts.as_slice() {
        [table] => (None, *table),
        [schema, table] => (Some(*schema), *table),
        _ => {
            return refuse(
                inspector,
                format!("`{name}`: name tables as TABLE or SCHEMA.TABLE"),
            )
        }
    };
    if schema.is_none() && inspector.ctes.contains(&table.to_ascii_lowercase()) {
        return ControlFlow::Continue(());
    }
    if inspector.allow.iter().any(|t| t.matches(schema, table)) {
        return ControlFlow::Continue(());
    }
    let allowed: Vec<String> = inspector.allow.iter().map(|t| t.qualified()).collect();
    refuse(
        inspector,
        format!(
            "table `{name}` is not one this source allows; it allows: {}",
            allowed.join(", ")
        ),
    )
}

impl Visitor for Inspector<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(kind) = body_kind(&query.body) {
            return refuse(
                self,
                format!("sql_query is read-only: {kind} is not allowed"),
            );
        }
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                if let Some(kind) = body_kind(&cte.query.body) {
                    return refuse(
                        self,
                        format!("sql_query is read-only: {kind} is not allowed"),
                    );
                }
            }
        }
        if !query.locks.is_empty() {
            return refuse(
                self,
                "sql_query is read-only: row locks (FOR UPDATE/SHARE) are not allowed".into(),
            );
        }
        if let SetExpr::Select(select) = query.body.as_ref() {
            if select.into.is_some() {
                return refuse(
                    self,
                    "sql_query is read-only: SELECT … INTO is not allowed".into(),
                );
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        // Table functions (`generate_series(…)`) are not tables; the
        // database's grants decide what they may see.
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            return check_relation(self, name);
        }
        ControlFlow::Continue(())
    }
}

struct CteNames(HashSet<String>);

impl Visitor for CteNames {
    type Break = ();
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace()
        .next()
        .unwrap_or("statement")
        .to_ascii_uppercase()
}

/// Checks `sql` against the allow-list and returns the statement to run,
/// with a row limit of at most `max_rows + 1` (one more than is shown, to
/// tell the model there were more).
pub fn check_query(
    dialect: Dialect,
    sql: &str,
    allow: &[AllowedTable],
    max_rows: u32,
) -> Result<String, SqlError> {
    if sql.len() > MAX_QUERY_LEN {
        return Err(SqlError::Refused(format!(
            "the query is longer than {MAX_QUERY_LEN} bytes"
        )));
    }
    let parsed = match dialect {
        Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, sql),
        Dialect::Mysql => Parser::parse_sql(&MySqlDialect {}, sql),
        Dialect::Sqlite => Parser::parse_sql(&SQLiteDialect {}, sql),
    }
    .map_err(|e| SqlError::Refused(format!("the query does not parse: {e}")))?;
    let mut statement = match <[Statement; 1]>::try_from(parsed) {
        Ok([statement]) => statement,
        Err(statements) if statements.is_empty() => {
            return Err(SqlError::Refused("the query is empty".into()))
        }
        Err(_) => {
            return Err(SqlError::Refused(
                "send one statement at a time (no `;` between statements)".into(),
            ))
        }
    };
    let Statement::Query(query) = &mut statement else {
        return Err(SqlError::Refused(format!(
            "sql_query is read-only: only queries (SELECT, WITH … SELECT, VALUES) run here, not {}",
            statement_kind(&statement)
        )));
    };
    let mut ctes = CteNames(HashSet::new());
    let _ = query.visit(&mut ctes);
    let mut inspector = Inspector {
        allow,
        ctes: ctes.0,
        refused: None,
    };
    if query.visit(&mut inspector).is_break() {
        return Err(SqlError::Refused(inspector.refused.unwrap_or_default()));
    }
    cap_rows(query, u64::from(max_rows) + 1);
    Ok(statement.to_string())
}

/// The tables a query reads (lower case, without schema, CTEs left out, in
/// the order first named), for policies to decide on. Tries each dialect
/// Roster speaks; a query none parses reads nothing that can be named.
pub fn tables_read(sql: &str) -> Vec<String> {
    if sql.len() > MAX_QUERY_LEN {
        return Vec::new();
    }
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .or_else(|_| Parser::parse_sql(&MySqlDialect {}, sql))
        .or_else(|_| Parser::parse_sql(&SQLiteDialect {}, sql));
    let Ok(statements) = parsed else {
        return Vec::new();
    };
    let mut ctes = CteNames(HashSet::new());
    let mut tables: Vec<String> = Vec::new();
    for statement in &statements {
        let _ = statement.visit(&mut ctes);
        let _ = sqlparser::ast::visit_relations(statement, |name: &ObjectName| {
            if let Some(ObjectNamePart::Identifier(last)) = name.0.last() {
                let table = last.value.to_ascii_lowercase();
                if !ctes.0.contains(&table) && !tables.contains(&table) {
                    tables.push(table);
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    tables
}

fn literal(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Writes `LIMIT cap` into the outer query unless it already has a smaller
/// literal one. A limit the database computes is left alone; the reader
/// stops at `cap` rows anyway.
fn cap_rows(query: &mut Query, cap: u64) {
    let cap_expr = || Expr::value(Value::Number(cap.to_string(), false));
    match &mut query.limit_clause {
        None => {
            if query.fetch.is_none() {
                query.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(cap_expr()),
                    offset: None,
                    limit_by: vec![],
                });
            }
        }
        Some(LimitClause::LimitOffset { limit, .. }) => match limit {
            None => *limit = Some(cap_expr()),
            Some(expr) if literal(expr).is_some_and(|n| n > cap) => *expr = cap_expr(),
            Some(_) => {}
        },
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => {
            if literal(limit).is_some_and(|n| n > cap) {
                *limit = cap_expr();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_read_names_each_table_once_without_ctes() {
        assert_eq!(
            super::tables_read("SELECT * FROM Public.Orders o JOIN customers c ON c.id = o.cid"),
            vec!["orders", "customers"]
        );
        assert_eq!(
            super::tables_read("WITH t AS (SELECT 1 FROM orders) SELECT * FROM t, orders"),
            vec!["orders"]
        );
        assert!(super::tables_read("not sql at all").is_empty());
    }

    use super::*;
    use crate::allow::parse_allow_list;

    fn allow() -> Vec<AllowedTable> {
        parse_allow_list(&["orders,public.customers(id,name)".to_owned()]).expect("allow-list")
    }

    fn check(sql: &str) -> Result<String, SqlError> {
        check_query(Dialect::Postgres, sql, &allow(), 100)
    }

    #[test]
    fn queries_on_allowed_tables_pass_with_a_row_cap() {
        let sql = check("select id, total from orders where total > 10 order by id").expect("ok");
        assert!(sql.ends_with("LIMIT 101"), "{sql}");
        let sql = check("select * from orders limit 5").expect("ok");
        assert!(sql.ends_with("LIMIT 5"), "{sql}");
        let sql = check("select * from orders limit 5000").expect("ok");
        assert!(sql.ends_with("LIMIT 101"), "{sql}");
        let sql = check(
            "with big as (select * from orders where total > 100) \
             select c.name, count(*) from big join public.customers c on c.id = big.customer_id group by c.name",
        )
        .expect("ctes and joins on allowed tables pass");
        assert!(sql.contains("LIMIT 101"));
        check("select (select count(*) from orders) as n").expect("subqueries pass");
        check("select 1 union all select 2").expect("no tables at all pass");
    }

    #[test]
    fn writes_and_other_statements_are_refused() {
        for sql in [
            "delete from orders",
            "insert into orders values (1)",
            "update orders set total = 0",
            "drop table orders",
            "create table x (a int)",
            "copy orders to '/tmp/x'",
            "set role postgres",
            "with d as (delete from orders returning *) select * from d",
            "select * from orders for update",
            "select * into new_table from orders",
            "grant select on orders to public",
            "begin",
        ] {
            let err = check(sql).expect_err(sql);
            assert!(matches!(err, SqlError::Refused(_)), "{sql}: {err}");
        }
    }

    #[test]
    fn tables_outside_the_allow_list_are_refused_wherever_they_hide() {
        for sql in [
            "select * from salaries",
            "select * from orders join salaries on true",
            "select (select max(amount) from salaries)",
            "select * from orders where exists (select 1 from salaries)",
            "with s as (select * from salaries) select * from s",
            "select * from private.customers",
            "select * from pg_catalog.pg_authid",
            "select * from orders union select * from salaries",
        ] {
            let err = check(sql).expect_err(sql);
            assert!(err.to_string().contains("allows: orders"), "{sql}: {err}");
        }
    }

    #[test]
    fn stacked_statements_and_garbage_are_refused() {
        assert!(check("select 1; drop table orders").is_err());
        assert!(check("select * from orders; ").is_ok());
        assert!(check("").is_err());
        assert!(check("selec * frm orders").is_err());
        assert!(check(&"x".repeat(70_000)).is_err());
    }

    #[test]
    fn comments_cannot_smuggle_text_past_the_check() {
        let sql = check("select * from orders -- ; drop table orders").expect("ok");
        assert!(!sql.contains("drop"), "{sql}");
    }

    #[test]
    fn mysql_and_sqlite_dialects_parse_their_own_syntax() {
        let allow = allow();
        let sql = check_query(
            Dialect::Mysql,
            "select `id` from orders limit 2, 500",
            &allow,
            9,
        )
        .expect("mysql");
        assert!(sql.contains("10"), "{sql}");
        check_query(Dialect::Sqlite, "select id from orders", &allow, 9).expect("sqlite");
        assert!(check_query(
            Dialect::Mysql,
            "select * from orders into outfile '/tmp/x'",
            &allow,
            9
        )
        .is_err());
    }
}
