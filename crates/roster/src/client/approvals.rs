//! `roster approvals list|show|approve|deny|watch`: the inbox of tool calls
//! that wait for a human, and a live feed of it.

use super::api_client::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::Result;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct ApprovalArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: ApprovalCommand,
}

#[derive(clap::Subcommand)]
enum ApprovalCommand {
    /// Requests, newest first (pending ones unless --status says otherwise).
    List {
        /// pending, approved, denied, expired, cancelled or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long)]
        json: bool,
    },
    /// One request as JSON.
    Show { id: String },
    /// Approve: the run resumes and the call is made.
    Approve {
        id: String,
        /// Kept with the decision.
        #[arg(long)]
        note: Option<String>,
    },
    /// Deny: the call is not made and the model is told (with the note).
    Deny {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Follow the inbox live: a line for each request waiting now, each new
    /// one as its run pauses, and each that is decided, expires or is
    /// withdrawn. Runs until interrupted (or --count lines).
    Watch {
        /// Stop after this many lines.
        #[arg(long)]
        count: Option<usize>,
        /// One JSON object per line: {"event", "approval"}.
        #[arg(long)]
        json: bool,
    },
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

pub async fn approvals(args: ApprovalArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        ApprovalCommand::List { status, json } => {
            let list = client
                .get(&["v1", "approvals"], &[("status", status)])
                .await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    vec![
                        text(&a["id"]),
                        text(&a["status"]),
                        text(&a["agent"]),
                        text(&a["tool"]),
                        one_line(&a["arguments"].to_string(), 40),
                        one_line(&text(&a["reason"]), 40),
                        text(&a["expires_at"]),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "ID",
                        "STATUS",
                        "AGENT",
                        "TOOL",
                        "ARGUMENTS",
                        "REASON",
                        "EXPIRES"
                    ],
                    &rows
                )
            );
        }
        ApprovalCommand::Show { id } => {
            print_json(&client.get(&["v1", "approvals", &id], &[]).await?)?;
        }
        ApprovalCommand::Approve { id, note } => {
            let body = note.map_or_else(|| json!({}), |n| json!({ "note": n }));
            let done = client
                .post(&["v1", "approvals", &id, "approve"], &body)
                .await?;
            println!(
                "approved {id}: {} of agent {} resumes (run {})",
                text(&done["tool"]),
                text(&done["agent"]),
                text(&done["run_id"])
            );
        }
        ApprovalCommand::Deny { id, note } => {
            let body = note.map_or_else(|| json!({}), |n| json!({ "note": n }));
            let done = client
                .post(&["v1", "approvals", &id, "deny"], &body)
                .await?;
            println!(
                "denied {id}: {} of agent {} is not made; the model is told (run {})",
                text(&done["tool"]),
                text(&done["agent"]),
                text(&done["run_id"])
            );
        }
        ApprovalCommand::Watch { count, json } => watch(&client, count, json).await?,
    }
    Ok(())
}

async fn watch(client: &Client, count: Option<usize>, json: bool) -> Result<()> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let response = client
        .stream(
            reqwest::Method::GET,
            &["v1", "approvals", "events"],
            None,
            None,
        )
        .await?;
    let mut events = response.bytes_stream().eventsource();
    let mut printed = 0;
    while count.is_none_or(|n| printed < n) {
        let event = match events.next().await {
            None => anyhow::bail!("the server closed the approvals feed"),
            Some(Err(e)) => anyhow::bail!("the approvals feed broke: {e}"),
            Some(Ok(event)) => event,
        };
        let Ok(approval) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        if json {
            println!("{}", json!({"event": event.event, "approval": approval}));
        } else {
            let what = match event.event.as_str() {
                "approval_requested" => "waiting".to_owned(),
                "approval_settled" => text(&approval["status"]),
                // A newer server's event this CLI does not know.
                _ => continue,
            };
            println!(
                "{}  {what:<9} {} wants {} {}: {}",
                text(&approval["id"]),
                text(&approval["agent"]),
                text(&approval["tool"]),
                one_line(&approval["arguments"].to_string(), 60),
                one_line(&text(&approval["reason"]), 60),
            );
        }
        printed += 1;
    }
    Ok(())
}
