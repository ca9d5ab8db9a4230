//! `roster memory list|search|show|add|edit|delete` and `roster index
//! status|rebuild`: inspect and correct what agents remember.

use super::api_client::{decode, Client};
use super::output::{hang, one_line, print_json, table, time};
use super::Connection;
use anyhow::{anyhow, Context, Result};
use roster_core::record::{MemoryRecord, MemoryRecordVersion};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(clap::Args)]
pub struct MemoryArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: MemoryCommand,
}

#[derive(clap::Subcommand)]
enum MemoryCommand {
    /// List memory records, oldest first.
    List {
        /// Only this namespace (e.g. agents/helper).
        #[arg(long, short)]
        namespace: Option<String>,
        /// Only this kind: fact, preference, summary or note.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (1-1000; server default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
        /// Only records after this id.
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// Include expired records.
        #[arg(long)]
        include_expired: bool,
        #[arg(long)]
        json: bool,
    },
    /// Search records by meaning and words.
    Search {
        query: String,
        /// Namespace to search (repeatable).
        #[arg(long, short, required = true)]
        namespace: Vec<String>,
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Show a record and its history.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Store a record.
    Add {
        content: String,
        #[arg(long, short)]
        namespace: String,
        /// fact (default), preference, summary or note.
        #[arg(long)]
        kind: Option<String>,
        /// Metadata as a JSON object.
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// Expiry, RFC 3339 (e.g. 2027-01-31T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// Correct a record (the old version stays in its history).
    Edit {
        id: String,
        #[arg(long)]
        content: Option<String>,
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        #[arg(long, value_name = "TIME", conflicts_with = "no_expiry")]
        expires_at: Option<String>,
        /// Remove the expiry.
        #[arg(long)]
        no_expiry: bool,
    },
    /// Delete a record (the store keeps its versions, for audit).
    Delete { id: String },
}

#[derive(clap::Args)]
pub struct IndexArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(clap::Subcommand)]
enum IndexCommand {
    /// How far the search index has caught up with the store.
    Status,
    /// Rebuild the search index from the store (admin key).
    Rebuild,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<MemoryRecord>,
    next_after: Option<String>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(flatten)]
    record: MemoryRecord,
    history: Vec<MemoryRecordVersion>,
}

#[derive(Deserialize)]
struct Hit {
    record: MemoryRecord,
    score: f32,
}

#[derive(Deserialize)]
struct Results {
    mode: String,
    notice: Option<String>,
    data: Vec<Hit>,
}

pub async fn run(args: MemoryArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        MemoryCommand::List {
            namespace,
            kind,
            limit,
            after,
            include_expired,
            json,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(ns) = namespace {
                query.push(("namespace", ns));
            }
            if let Some(kind) = kind {
                query.push(("kind", kind));
            }
            if let Some(limit) = limit {
                query.push(("limit", limit.to_string()));
            }
            if let Some(after) = after {
                query.push(("after", after));
            }
            if include_expired {
                query.push(("include_expired", "true".into()));
            }
            let value = client.get(&["v1", "memories"], &query).await?;
            if json {
                return print_json(&value);
            }
            let page: Page = decode(value)?;
            let rows: Vec<Vec<String>> = page.data.iter().map(row).collect();
            print!(
                "{}",
                table(&["ID", "NAMESPACE", "KIND", "V", "CONTENT"], &rows)
            );
            if let Some(next) = page.next_after {
                eprintln!("more: --after {next}");
            }
            Ok(())
        }
        MemoryCommand::Search {
            query,
            namespace,
            limit,
            json,
        } => {
            let mut body = json!({"query": query, "namespaces": namespace});
            if let Some(limit) = limit {
                body["limit"] = json!(limit);
            }
            let value = client.post(&["v1", "memories", "search"], &body).await?;
            if json {
                return print_json(&value);
            }
            let results: Results = decode(value)?;
            if let Some(notice) = &results.notice {
                eprintln!("note: {notice}");
            }
            let rows: Vec<Vec<String>> = results
                .data
                .iter()
                .map(|h| {
                    let mut r = row(&h.record);
                    r.insert(1, format!("{:.3}", h.score));
                    r
                })
                .collect();
            print!(
                "{}",
                table(&["ID", "SCORE", "NAMESPACE", "KIND", "V", "CONTENT"], &rows)
            );
            eprintln!(
                "{} result(s), {} search",
                results.data.len(),
                results.mode.replace('_', "-")
            );
            Ok(())
        }
        MemoryCommand::Show { id, json } => {
            let value = client.get(&["v1", "memories", &id], &[]).await?;
            if json {
                return print_json(&value);
            }
            let detail: Detail = decode(value)?;
            print!("{}", render(&detail));
            Ok(())
        }
        MemoryCommand::Add {
            content,
            namespace,
            kind,
            metadata,
            expires_at,
        } => {
            let mut body = json!({"namespace": namespace, "content": content});
            if let Some(kind) = kind {
                body["kind"] = json!(kind);
            }
            if let Some(raw) = metadata {
                body["metadata"] = parse_metadata(&raw)?;
            }
            if let Some(t) = expires_at {
                body["expires_at"] = json!(t);
            }
            let record: MemoryRecord = decode(client.post(&["v1", "memories"], &body).await?)?;
            println!("{} (version {})", record.id, record.version);
            Ok(())
        }
        MemoryCommand::Edit {
            id,
            content,
            metadata,
            expires_at,
            no_expiry,
        } => {
            let mut body = Map::new();
            if let Some(content) = content {
                body.insert("content".into(), json!(content));
            }
            if let Some(raw) = metadata {
                body.insert("metadata".into(), parse_metadata(&raw)?);
            }
            if let Some(t) = expires_at {
                body.insert("expires_at".into(), json!(t));
            }
            if no_expiry {
                body.insert("expires_at".into(), Value::Null);
            }
            if body.is_empty() {
                return Err(anyhow!(
                    "nothing to change: give --content, --metadata, --expires-at or --no-expiry"
                ));
            }
            let record: MemoryRecord = decode(
                client
                    .patch(&["v1", "memories", &id], &Value::Object(body))
                    .await?,
            )?;
            println!("{} (version {})", record.id, record.version);
            Ok(())
        }
        MemoryCommand::Delete { id } => {
            client.delete(&["v1", "memories", &id]).await?;
            println!("deleted {id}");
            Ok(())
        }
    }
}

pub async fn index(args: IndexArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    let value = match args.command {
        IndexCommand::Status => client.get(&["v1", "index"], &[]).await?,
        IndexCommand::Rebuild => client.post(&["v1", "index", "rebuild"], &json!({})).await?,
    };
    print_json(&value)
}

fn parse_metadata(raw: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(raw).context("--metadata is not valid JSON")?;
    if !value.is_object() {
        return Err(anyhow!("--metadata must be a JSON object"));
    }
    Ok(value)
}

fn row(r: &MemoryRecord) -> Vec<String> {
    vec![
        r.id.to_string(),
        r.namespace.clone(),
        r.kind.clone(),
        r.version.to_string(),
        one_line(&r.content, 80),
    ]
}

fn render(detail: &Detail) -> String {
    const INDENT: usize = 10;
    let r = &detail.record;
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        out.push_str(&format!("{label:<9} {}\n", hang(value, INDENT)));
    };
    line("memory", r.id.as_str());
    line("namespace", &r.namespace);
    line("kind", &r.kind);
    if let Some(key) = &r.key {
        line("key", key);
    }
    line("version", &r.version.to_string());
    line("content", &r.content);
    if r.metadata.as_object().is_some_and(|m| !m.is_empty()) {
        line("metadata", &r.metadata.to_string());
    }
    if let Some(source) = &r.source {
        let mut parts = Vec::new();
        if let Some(s) = &source.session_id {
            parts.push(format!("session {s}"));
        }
        if let (Some(a), Some(b)) = (source.from_seq, source.to_seq) {
            parts.push(format!("items #{a}-#{b}"));
        }
        if let Some(run) = &source.run_id {
            parts.push(format!("run {run}"));
        }
        if !parts.is_empty() {
            line("source", &parts.join(", "));
        }
    }
    line("created", &format!("{} UTC", time(&r.created_at)));
    line("updated", &format!("{} UTC", time(&r.updated_at)));
    if let Some(t) = &r.expires_at {
        line("expires", &format!("{} UTC", time(t)));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = detail
        .history
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                v.operation.clone(),
                v.principal.clone(),
                time(&v.created_at),
                one_line(&v.content, 60),
            ]
        })
        .collect();
    out.push_str(&table(&["V", "CHANGE", "BY", "AT", "CONTENT"], &rows));
    out
}
