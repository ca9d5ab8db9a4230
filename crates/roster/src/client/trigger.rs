//! `roster trigger add|list|show|remove`.

use super::api_client::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::Result;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct TriggerArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: TriggerCommand,
}

#[derive(clap::Subcommand)]
enum TriggerCommand {
    /// Give another system a signed webhook that starts a run of an agent;
    /// prints the hook's URL and its secret (shown this once).
    Add {
        /// Agent name or id.
        agent: String,
        /// The run's input: `{{payload}}` is the delivered JSON,
        /// `{{payload.a.b}}` one value of it.
        #[arg(long)]
        template: String,
        /// Send every delivery to this session (default: a new one each time).
        #[arg(long, value_name = "ID")]
        session: Option<String>,
    },
    /// List triggers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One trigger (never its secret).
    Show { id: String },
    /// Delete a trigger: its hook stops accepting deliveries.
    Remove { id: String },
}

pub async fn trigger(args: TriggerArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        TriggerCommand::Add {
            agent,
            template,
            session,
        } => {
            let mut body = json!({"agent": agent, "template": template});
            if let Some(session) = session {
                body["session"] = json!(session);
            }
            let made = client.post(&["v1", "triggers"], &body).await?;
            println!("trigger  {}", text(&made["id"]));
            println!("url      {}{}", client.base_url(), text(&made["url"]));
            println!("secret   {}", text(&made["secret"]));
            println!(
                "Sign each delivery: header X-Roster-Timestamp (Unix seconds) and X-Roster-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\" with the secret>. The secret is not shown again."
            );
            Ok(())
        }
        TriggerCommand::List { json } => {
            let value = client.get(&["v1", "triggers"], &[]).await?;
            if json {
                return print_json(&value);
            }
            let rows: Vec<Vec<String>> = value["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    vec![
                        text(&t["id"]),
                        text(&t["agent"]),
                        text(&t["url"]),
                        one_line(&text(&t["template"]), 50),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no triggers");
            } else {
                print!("{}", table(&["ID", "AGENT", "URL", "TEMPLATE"], &rows));
            }
            Ok(())
        }
        TriggerCommand::Show { id } => {
            let value = client.get(&["v1", "triggers", &id], &[]).await?;
            print_json(&value)
        }
        TriggerCommand::Remove { id } => {
            client.delete(&["v1", "triggers", &id]).await?;
            println!("trigger {id}: removed");
            Ok(())
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
