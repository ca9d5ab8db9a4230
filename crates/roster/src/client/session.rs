//! `roster session list|show|items|files|upload|download|delete-file|delete|upgrade`.

use super::api_client::{decode, Client};
use super::output::{hang, one_line, print_json, table, time, Style};
use super::Connection;
use anyhow::Result;
use roster_core::agent::Agent;
use roster_core::item::{Item, ItemContent};
use roster_core::RunId;
use roster_store::Session;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(clap::Args)]
pub struct SessionArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: SessionCommand,
}

#[derive(clap::Subcommand)]
enum SessionCommand {
    /// List sessions, newest first.
    List {
        /// Only sessions of this agent (name or id).
        #[arg(long)]
        agent: Option<String>,
        /// Only sessions of this user (one your key may act for).
        #[arg(long)]
        user: Option<String>,
        /// At most this many (1-1000; server default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a session.
    Show {
        /// Session id.
        id: String,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List the files in a session's workspace (what `run_code` sees).
    Files {
        /// Session id.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Upload a file into a session's workspace.
    Upload {
        /// Session id.
        id: String,
        /// Local file.
        file: std::path::PathBuf,
        /// Path in the workspace (default: the file's name).
        #[arg(long = "as", value_name = "PATH")]
        target: Option<String>,
    },
    /// Download a file from a session's workspace.
    Download {
        /// Session id.
        id: String,
        /// Path in the workspace.
        path: String,
        /// Where to write it (`-` for standard output; default: its name here).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Delete a file from a session's workspace.
    DeleteFile {
        /// Session id.
        id: String,
        /// Path in the workspace.
        path: String,
    },
    /// Delete a session: its history, runs, journal, workspace files and
    /// search entries (audited; refused while a run is unfinished).
    Delete {
        /// Session id.
        id: String,
    },
    /// Move a session to its agent's current version: later runs use it.
    Upgrade {
        /// Session id.
        id: String,
    },
    /// Print a session's conversation: `#seq role: text`, tool calls and results.
    Items {
        /// Session id.
        id: String,
        /// Only items after this sequence number.
        #[arg(long, value_name = "SEQ")]
        after: Option<i64>,
        /// Items per page (1-1000; server default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
        /// Follow the pages to the end instead of printing one page.
        #[arg(long)]
        all: bool,
        /// Print raw JSON (`{"data": [...], "next_after": ...}`).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Deserialize)]
struct SessionList {
    data: Vec<Session>,
}

#[derive(Deserialize)]
struct ItemPage {
    data: Vec<Item>,
    next_after: Option<i64>,
}

pub async fn run(args: SessionArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        SessionCommand::List {
            agent,
            user,
            limit,
            json,
        } => list(&client, agent, user, limit, json).await,
        SessionCommand::Show { id, json } => show(&client, &id, json).await,
        SessionCommand::Items {
            id,
            after,
            limit,
            all,
            json,
        } => items(&client, &id, after, limit, all, json).await,
        SessionCommand::Files { id, json } => files(&client, &id, json).await,
        SessionCommand::Delete { id } => {
            client.delete(&["v1", "sessions", &id]).await?;
            println!("deleted session {id} with its history, runs and workspace");
            Ok(())
        }
        SessionCommand::Upgrade { id } => {
            let done = client
                .post(&["v1", "sessions", &id, "upgrade"], &json!({}))
                .await?;
            let (from, to) = (&done["from_version"], &done["session"]["agent_version"]);
            if from == to {
                println!("session {id} is already on its agent's current version ({to})");
            } else {
                println!(
                    "session {id} moved from agent version {from} to {to}; its next runs use it"
                );
            }
            Ok(())
        }
        SessionCommand::Upload { id, file, target } => {
            let target = match target {
                Some(target) => target,
                None => file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        anyhow::anyhow!("{} names no file; give --as PATH", file.display())
                    })?,
            };
            let mut segments = vec!["v1", "sessions", id.as_str(), "files"];
            segments.extend(target.split('/'));
            let written = client
                .put_file(&segments, &file, "application/octet-stream")
                .await?;
            println!("uploaded {target} ({} bytes)", written["bytes"]);
            Ok(())
        }
        SessionCommand::Download { id, path, output } => {
            let mut segments = vec!["v1", "sessions", id.as_str(), "files"];
            segments.extend(path.split('/'));
            let bytes = client.get_bytes(&segments).await?;
            let output = output.unwrap_or_else(|| {
                std::path::PathBuf::from(path.rsplit('/').next().unwrap_or(path.as_str()))
            });
            if output.as_os_str() == "-" {
                use std::io::Write as _;
                std::io::stdout().write_all(&bytes)?;
            } else {
                std::fs::write(&output, &bytes)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
                eprintln!("saved {} ({} bytes)", output.display(), bytes.len());
            }
            Ok(())
        }
        SessionCommand::DeleteFile { id, path } => {
            let mut segments = vec!["v1", "sessions", id.as_str(), "files"];
            segments.extend(path.split('/'));
            client.delete(&segments).await?;
            println!("deleted {path}");
            Ok(())
        }
    }
}

async fn files(client: &Client, id: &str, json: bool) -> Result<()> {
    let value = client.get(&["v1", "sessions", id, "files"], &[]).await?;
    if json {
        return super::output::print_json(&value);
    }
    let rows: Vec<Vec<String>> = value["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|f| {
            vec![
                f["path"].as_str().unwrap_or_default().to_owned(),
                f["bytes"].to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no files in the workspace (links and empty directories are not listed)");
    } else {
        print!("{}", super::output::table(&["PATH", "BYTES"], &rows));
    }
    Ok(())
}

async fn list(
    client: &Client,
    agent: Option<String>,
    user: Option<String>,
    limit: Option<i64>,
    json: bool,
) -> Result<()> {
    let mut query = Vec::new();
    if let Some(agent) = agent {
        query.push(("agent", agent));
    }
    if let Some(user) = user {
        query.push(("user", user));
    }
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    let value = client.get(&["v1", "sessions"], &query).await?;
    if json {
        return print_json(&value);
    }
    let list: SessionList = decode(value)?;
    if list.data.is_empty() {
        eprintln!("no sessions");
        return Ok(());
    }
    let names = agent_names(client).await?;
    let rows: Vec<Vec<String>> = list
        .data
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                names
                    .get(s.agent_id.as_str())
                    .cloned()
                    .unwrap_or_else(|| s.agent_id.to_string()),
                s.agent_version.to_string(),
                s.user.clone().unwrap_or_else(|| "-".to_owned()),
                time(&s.created_at),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["ID", "AGENT", "VERSION", "USER", "CREATED (UTC)"], &rows)
    );
    Ok(())
}

/// Agent id → name, for showing sessions by agent name.
async fn agent_names(client: &Client) -> Result<HashMap<String, String>> {
    #[derive(Deserialize)]
    struct List {
        data: Vec<Agent>,
    }
    let list: List = decode(client.get(&["v1", "agents"], &[]).await?)?;
    Ok(list
        .data
        .into_iter()
        .map(|a| (a.id.to_string(), a.name))
        .collect())
}

async fn show(client: &Client, id: &str, json: bool) -> Result<()> {
    let value = client.get(&["v1", "sessions", id], &[]).await?;
    if json {
        return print_json(&value);
    }
    let session: Session = decode(value)?;
    let names = agent_names(client).await?;
    let agent = match names.get(session.agent_id.as_str()) {
        Some(name) => format!("{name} ({})", session.agent_id),
        None => format!("{} (deleted)", session.agent_id),
    };
    println!("session  {}", session.id);
    println!("agent    {agent}");
    println!("version  {}", session.agent_version);
    println!("created  {} UTC", time(&session.created_at));
    Ok(())
}

async fn items(
    client: &Client,
    id: &str,
    after: Option<i64>,
    limit: Option<i64>,
    all: bool,
    json: bool,
) -> Result<()> {
    let segments = ["v1", "sessions", id, "items"];
    // Following every page: large pages unless told otherwise.
    let limit = limit.or(all.then_some(1000));
    let mut after = after;
    let mut collected: Vec<Value> = Vec::new();
    let mut printer = ItemPrinter::new();
    loop {
        let mut query = Vec::new();
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let value = client.get(&segments, &query).await?;
        if json && !all {
            return print_json(&value);
        }
        if json {
            let page: RawPage = decode(value)?;
            collected.extend(page.data);
            match page.next_after {
                Some(next) if all => after = Some(next),
                _ => break,
            }
            continue;
        }
        let page: ItemPage = decode(value)?;
        for item in &page.data {
            printer.print(item);
        }
        match page.next_after {
            Some(next) if all => after = Some(next),
            Some(next) => {
                eprintln!("(more items: --after {next}, or --all)");
                break;
            }
            None => break,
        }
    }
    if json {
        return print_json(&json!({"data": collected, "next_after": null}));
    }
    if printer.printed == 0 {
        eprintln!("no items");
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawPage {
    data: Vec<Value>,
    next_after: Option<i64>,
}

/// Prints items readably, with a rule whenever the run changes.
struct ItemPrinter {
    run: Option<RunId>,
    printed: usize,
    style: Style,
}

impl ItemPrinter {
    fn new() -> Self {
        Self {
            run: None,
            printed: 0,
            style: Style::for_stdout(),
        }
    }

    fn print(&mut self, item: &Item) {
        if item.run_id.is_some() && item.run_id != self.run {
            if let Some(run) = &item.run_id {
                println!("{}", self.style.dim(&format!("── run {run}")));
            }
            self.run.clone_from(&item.run_id);
        }
        self.printed += 1;
        print!("{}", render_item(item));
    }
}

/// One item as text, ending with a newline.
fn render_item(item: &Item) -> String {
    let seq = format!("#{}", item.seq);
    let mut out = match &item.content {
        ItemContent::UserMessage { text } => format!("{seq} user: {}", hang(text, 4)),
        ItemContent::SystemNote { text } => format!("{seq} system: {}", hang(text, 4)),
        ItemContent::Opaque { item } => format!(
            "{seq} {}: (kept as sent)",
            item.get("type").and_then(|t| t.as_str()).unwrap_or("item")
        ),
        ItemContent::AssistantMessage { text, tool_calls } => {
            let mut out = if text.is_empty() {
                format!("{seq} assistant:")
            } else {
                format!("{seq} assistant: {}", hang(text, 4))
            };
            for call in tool_calls {
                out.push_str(&format!(
                    "\n    → tool {} {}",
                    call.name,
                    one_line(&call.arguments, 500)
                ));
            }
            out
        }
        ItemContent::ToolResult {
            name,
            output,
            is_error,
            ..
        } => {
            let label = if *is_error { "error" } else { "result" };
            format!("{seq} tool {name} {label}: {}", hang(output, 4))
        }
    };
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: i64, content: Value) -> Item {
        let mut value =
            json!({"seq": seq, "run_id": null, "tokens": 1, "created_at": "2025-01-01T00:00:00Z"});
        if let (Value::Object(fields), Value::Object(extra)) = (&mut value, content) {
            fields.extend(extra);
        }
        serde_json::from_value(value).expect("item")
    }

    #[test]
    fn items_render() {
        assert_eq!(
            render_item(&item(
                1,
                json!({"type": "user_message", "text": "hi\nthere"})
            )),
            "#1 user: hi\n    there\n"
        );
        assert_eq!(
            render_item(&item(
                2,
                json!({"type": "assistant_message", "text": "", "tool_calls": [{"id": "c1", "name": "memory_append", "arguments": "{\"a\":1}"}]})
            )),
            "#2 assistant:\n    → tool memory_append {\"a\":1}\n"
        );
        assert_eq!(
            render_item(&item(
                3,
                json!({"type": "tool_result", "call_id": "c1", "name": "memory_append", "output": "ok", "is_error": false})
            )),
            "#3 tool memory_append result: ok\n"
        );
    }
}
