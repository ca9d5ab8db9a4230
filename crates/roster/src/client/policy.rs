//! `roster policy put|list|show|remove|schema` and `roster audit
//! list|export`.

use super::api_client::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(clap::Subcommand)]
enum PolicyCommand {
    /// Create or replace a named policy document from a Cedar file (`-`:
    /// standard input); it is validated against Roster's schema first.
    Put {
        name: String,
        #[arg(long, short)]
        file: PathBuf,
    },
    /// List the tenant's policy documents and the actions they govern.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print one document's Cedar text.
    Show { name: String },
    /// Remove a document.
    Remove { name: String },
    /// Print Roster's Cedar schema.
    Schema,
}

pub async fn policy(args: PolicyArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        PolicyCommand::Put { name, file } => {
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the policy from standard input")?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let stored = client
                .put(&["v1", "policies", &name], &json!({ "text": text }))
                .await?;
            println!(
                "stored policy {}",
                stored["name"].as_str().unwrap_or_default()
            );
        }
        PolicyCommand::List { json } => {
            let list = client.get(&["v1", "policies"], &[]).await?;
            if json {
                return print_json(&list);
            }
            let governed: Vec<&str> = list["governed"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "revision {}; governed actions: {}",
                list["revision"],
                if governed.is_empty() {
                    "none (everything is allowed until a policy names an action)".to_owned()
                } else {
                    governed.join(", ")
                }
            );
            let rows: Vec<Vec<String>> = list["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    vec![
                        p["name"].as_str().unwrap_or_default().to_owned(),
                        p["updated_at"].as_str().unwrap_or_default().to_owned(),
                        one_line(p["text"].as_str().unwrap_or_default(), 60),
                    ]
                })
                .collect();
            print!("{}", table(&["NAME", "UPDATED", "TEXT"], &rows));
        }
        PolicyCommand::Show { name } => {
            let policy = client.get(&["v1", "policies", &name], &[]).await?;
            println!("{}", policy["text"].as_str().unwrap_or_default());
        }
        PolicyCommand::Remove { name } => {
            client.delete(&["v1", "policies", &name]).await?;
            println!("removed policy {name}");
        }
        PolicyCommand::Schema => {
            let schema = client.get(&["v1", "policies", "schema"], &[]).await?;
            print!("{}", schema["schema"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(clap::Args, Clone)]
struct AuditFilter {
    /// Events at or after, RFC 3339.
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Events at or before, RFC 3339.
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// An action (key.create) or a family (policy).
    #[arg(long)]
    action: Option<String>,
    /// Events whose actor chain contains this (agent:analyst).
    #[arg(long)]
    actor: Option<String>,
}

impl AuditFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(since) = self.since {
            query.push(("since", since.to_rfc3339()));
        }
        if let Some(until) = self.until {
            query.push(("until", until.to_rfc3339()));
        }
        if let Some(action) = &self.action {
            query.push(("action", action.clone()));
        }
        if let Some(actor) = &self.actor {
            query.push(("actor", actor.clone()));
        }
        query
    }
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// The newest events as a table (oldest first).
    List {
        #[command(flatten)]
        filter: AuditFilter,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Every matching event as JSON Lines, oldest first.
    Export {
        #[command(flatten)]
        filter: AuditFilter,
        /// Write to this file instead of standard output (`-`: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn audit(args: AuditArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        AuditCommand::List {
            filter,
            limit,
            json,
        } => {
            let mut query = filter.query();
            query.push(("limit", limit.to_string()));
            let page = client.get(&["v1", "audit"], &query).await?;
            if json {
                return print_json(&page);
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    vec![
                        e["at"].as_str().unwrap_or_default().to_owned(),
                        e["action"].as_str().unwrap_or_default().to_owned(),
                        e["decision"].as_str().unwrap_or("-").to_owned(),
                        e["resource"].as_str().unwrap_or_default().to_owned(),
                        e["actor"].as_str().unwrap_or_default().to_owned(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["AT", "ACTION", "DECISION", "RESOURCE", "ACTOR"], &rows)
            );
        }
        AuditCommand::Export { filter, output } => {
            // `-` is standard output, as for `session download -o -`.
            let output = output.filter(|path| path.as_os_str() != "-");
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            // The server streams the export (and records it in the log).
            let mut url_query = filter.query();
            url_query.retain(|(k, _)| *k != "limit");
            let response = client
                .get_stream(&["v1", "audit", "export"], &url_query)
                .await?;
            let mut body = response.bytes_stream();
            let mut count = 0u64;
            let mut ended_cleanly = true;
            while let Some(chunk) = futures::StreamExt::next(&mut body).await {
                let chunk = chunk.map_err(|e| {
                    anyhow::anyhow!(
                        "the audit export broke off: {}",
                        super::api_client::root_cause(&e)
                    )
                })?;
                count += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                ended_cleanly = chunk.last() == Some(&b'\n');
                out.write_all(&chunk)?;
            }
            if !ended_cleanly {
                anyhow::bail!("the audit export ended early; the output is incomplete");
            }
            out.flush()?;
            if let Some(path) = output {
                eprintln!("exported {count} events to {}", path.display());
            }
        }
    }
    Ok(())
}
