//! `sql_query {source, query}`: one tool for all the SQL sources an agent
//! has (`sql:NAME` entries), whose description shows each source's allowed
//! schema, so the model writes queries against what it may read.

use crate::engine::TableSchema;
use crate::manager::SqlSources;
use crate::spec::{Engine, SqlSourceConfig};
use crate::KIND;
use async_trait::async_trait;
use roster_core::TenantId;
use roster_tool::{
    DynTool, ProviderError, ResolvedEntries, Tool, ToolCallContext, ToolOutput, ToolProvider,
};
use std::sync::Arc;
use std::time::Duration;

pub const TOOL_NAME: &str = "sql_query";
/// Longest schema text put in the description; past it tables are only named.
const MAX_SCHEMA_TEXT: usize = 16 * 1024;

/// Arguments of `sql_query`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlQueryArgs {
    /// The source to query, one of those this tool's description lists.
    pub source: String,
    /// One read-only query (SELECT, WITH … SELECT, VALUES) in the source's
    /// SQL dialect, on its allowed tables and columns only.
    pub query: String,
}

/// The schema of the arguments, with `source` limited to the agent's sources.
pub fn parameters(sources: &[String]) -> serde_json::Value {
    let mut parameters = roster_tool::parameters_of::<SqlQueryArgs>();
    if let Some(source) = parameters.pointer_mut("/properties/source") {
        source["enum"] = serde_json::json!(sources);
    }
    parameters
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "PostgreSQL",
        Engine::Mysql => "MySQL/MariaDB",
        Engine::Sqlite => "SQLite",
    }
}

/// One source as the model reads it: what it is, then each table with its
/// columns, types and comments.
pub fn describe_source(name: &str, config: &SqlSourceConfig, tables: &[TableSchema]) -> String {
    let mut text = format!(
        "## {name} ({}, at most {} rows per query)\n",
        engine_name(config.engine),
        config.limits.max_rows
    );
    if let Some(description) = &config.description {
        text.push_str(description.trim());
        text.push('\n');
    }
    for table in tables {
        text.push_str(&format!("- {} ({})", table.qualified(), table.kind));
        if let Some(comment) = &table.comment {
            text.push_str(&format!(": {}", comment.trim()));
        }
        text.push('\n');
        for column in &table.columns {
            text.push_str(&format!(
                "  - {} {}{}",
                column.name,
                column.data_type,
                if column.nullable { "" } else { " not null" }
            ));
            if let Some(comment) = &column.comment {
                text.push_str(&format!(" — {}", comment.trim()));
            }
            text.push('\n');
        }
    }
    text
}

pub struct SqlQueryTool {
    sources: Arc<SqlSources>,
    tenant: TenantId,
    names: Vec<String>,
    description: String,
    parameters: serde_json::Value,
    timeout: Duration,
    max_output_bytes: usize,
}

#[async_trait]
impl Tool for SqlQueryTool {
    fn name(&self) -> &str {
        TOOL_NAME
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> serde_json::Value {
        self.parameters.clone()
    }

    /// A read-only query may run again after a crash.
    fn idempotent(&self) -> bool {
        true
    }

    fn timeout(&self) -> Duration {
        // The source's own limit gives the clearer message; this is later.
        self.timeout + Duration::from_secs(5)
    }

    fn max_output_bytes(&self) -> usize {
        self.max_output_bytes
    }

    fn policy_kind(&self) -> &str {
        "sql"
    }

    /// `source`, and the tables the query reads: `tables` (lower case,
    /// without their schema) and `table` when there is exactly one, so a
    /// policy can say `context.table == "orders"`.
    fn policy_facts(
        &self,
        arguments: &serde_json::Value,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut facts = serde_json::Map::new();
        let Some(query) = arguments.get("query").and_then(|q| q.as_str()) else {
            return facts;
        };
        let tables = crate::check::tables_read(query);
        if let [only] = tables.as_slice() {
            facts.insert("table".into(), only.clone().into());
        }
        facts.insert("tables".into(), tables.into());
        facts
    }

    async fn call(&self, ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput {
        debug_assert_eq!(ctx.tenant, self.tenant);
        let args: SqlQueryArgs = match serde_json::from_value(arguments) {
            Ok(args) => args,
            Err(e) => {
                return ToolOutput::error(format!(
                    "invalid arguments for sql_query: {}",
                    roster_core::plain::plain_serde_error(&e.to_string())
                ))
            }
        };
        if !self.names.contains(&args.source) {
            return ToolOutput::error(format!(
                "`{}` is not a source of this agent; its sources are: {}",
                args.source,
                self.names.join(", ")
            ));
        }
        match self
            .sources
            .query(&self.tenant, &args.source, &args.query)
            .await
        {
            Ok(table) => ToolOutput::ok(table.render(&args.source)),
            Err(e) => ToolOutput::error(format!("source `{}`: {e}", args.source)),
        }
    }
}

/// Resolves `sql:NAME` entries into the one `sql_query` tool.
pub struct SqlProvider {
    sources: Arc<SqlSources>,
}

impl SqlProvider {
    pub fn new(sources: Arc<SqlSources>) -> Arc<Self> {
        Arc::new(Self { sources })
    }
}

fn provider_error(e: crate::SqlError) -> ProviderError {
    match e {
        crate::SqlError::NotFound(m) | crate::SqlError::Invalid(m) => ProviderError::Unknown(m),
        other => ProviderError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl ToolProvider for SqlProvider {
    fn scheme(&self) -> &str {
        KIND
    }

    async fn check(&self, tenant: &TenantId, entry: &str) -> Result<(), ProviderError> {
        roster_tool::check_integration_name(entry).map_err(ProviderError::Unknown)?;
        self.sources
            .registration(tenant, entry)
            .await
            .map(|_| ())
            .map_err(provider_error)
    }

    async fn resolve(&self, tenant: &TenantId, entry: &str) -> Result<Vec<DynTool>, ProviderError> {
        let mut resolved = self.resolve_all(tenant, &[entry.to_owned()]).await;
        match resolved.failed.pop() {
            Some((_, e)) => Err(e),
            None => Ok(resolved.tools),
        }
    }

    async fn resolve_all(&self, tenant: &TenantId, entries: &[String]) -> ResolvedEntries {
        let mut out = ResolvedEntries::default();
        let mut names: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut timeout = Duration::ZERO;
        let mut max_bytes = 0usize;
        let schemas =
            futures::future::join_all(entries.iter().map(|name| self.sources.schema(tenant, name)))
                .await;
        for (name, schema) in entries.iter().zip(schemas) {
            if names.contains(name) {
                continue;
            }
            match schema {
                Ok((config, tables)) => {
                    let described = describe_source(name, &config, &tables);
                    if text.len() + described.len() <= MAX_SCHEMA_TEXT {
                        text.push_str(&described);
                    } else {
                        let listed: Vec<String> = tables.iter().map(|t| t.qualified()).collect();
                        text.push_str(&format!(
                            "## {name} ({}): tables {} (columns left out for length)\n",
                            engine_name(config.engine),
                            listed.join(", ")
                        ));
                    }
                    timeout = timeout.max(config.limits.timeout());
                    max_bytes = max_bytes.max(config.limits.max_bytes as usize);
                    names.push(name.clone());
                }
                Err(e) => out.failed.push((name.clone(), provider_error(e))),
            }
        }
        if names.is_empty() {
            return out;
        }
        let description = format!(
            "Runs one read-only SQL query on one of the databases below and returns the rows as a table. \
             Only the tables and columns listed are readable; writes are refused. Aggregate or filter in SQL \
             rather than reading many rows.\n\n{text}"
        );
        out.tools.push(Arc::new(SqlQueryTool {
            sources: self.sources.clone(),
            tenant: tenant.clone(),
            parameters: parameters(&names),
            names,
            description,
            timeout,
            // The table is cut at the source's size; the rest is the summary.
            max_output_bytes: max_bytes + 1024,
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema is part of the model's contract: a change must be seen.
    #[test]
    fn schema_snapshot() {
        let expected = serde_json::json!({
            "type": "object",
            "description": "Arguments of `sql_query`.",
            "properties": {
                "source": {
                    "type": "string",
                    "description": "The source to query, one of those this tool's description lists.",
                    "enum": ["warehouse", "crm"]
                },
                "query": {
                    "type": "string",
                    "description": "One read-only query (SELECT, WITH … SELECT, VALUES) in the source's\nSQL dialect, on its allowed tables and columns only."
                }
            },
            "required": ["source", "query"],
            "additionalProperties": false
        });
        let actual = parameters(&["warehouse".into(), "crm".into()]);
        assert_eq!(actual, expected, "{actual}");
    }
}
