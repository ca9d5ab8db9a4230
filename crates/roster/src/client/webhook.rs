//! `roster webhook add|list|show|remove|notifications|resend`: webhooks out.

use super::api_client::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::Result;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: WebhookCommand,
}

#[derive(clap::Subcommand)]
enum WebhookCommand {
    /// Register a URL told when runs finish; prints its id and the signing
    /// secret (shown this once). Name it with `--notify` on an agent, a
    /// schedule or a message.
    Add {
        /// `http(s)://…`; the server's `[egress] allow` must let it through.
        #[arg(value_name = "URL")]
        target: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List webhooks.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One webhook (never its secret).
    Show { id: String },
    /// Change a webhook's URL (checked like a new one) or description.
    Update {
        id: String,
        /// The new URL (`--url` names the server).
        #[arg(long = "to", value_name = "URL")]
        target: Option<String>,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Delete a webhook: its pending notifications are not sent.
    Remove { id: String },
    /// Replace a webhook's signing secret; prints the new one (shown this
    /// once). The old one stops working at once.
    RotateSecret { id: String },
    /// The notifications sent (or to be sent) to a webhook, newest first,
    /// with every attempt.
    Notifications {
        id: String,
        /// `pending`, `delivered` or `failed`.
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send a failed (or delivered) notification again.
    Resend {
        /// The notification (`ntf_…`).
        notification: String,
    },
}

pub async fn webhook(args: WebhookArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        WebhookCommand::Add {
            target,
            description,
        } => {
            let mut body = json!({"url": target});
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let made = client.post(&["v1", "webhooks"], &body).await?;
            println!("webhook  {}", text(&made["id"]));
            println!("url      {}", text(&made["url"]));
            println!("secret   {}", text(&made["secret"]));
            println!(
                "Each notification is a POST of JSON with X-Roster-Timestamp (Unix seconds) and X-Roster-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\" with the secret>; X-Roster-Delivery names it (the same on every retry). The secret is not shown again."
            );
            Ok(())
        }
        WebhookCommand::List { json } => {
            let value = client.get(&["v1", "webhooks"], &[]).await?;
            if json {
                return print_json(&value);
            }
            let rows: Vec<Vec<String>> = items(&value)
                .iter()
                .map(|w| {
                    vec![
                        text(&w["id"]),
                        text(&w["url"]),
                        one_line(&text(&w["description"]), 40),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no webhooks");
            } else {
                print!("{}", table(&["ID", "URL", "DESCRIPTION"], &rows));
            }
            Ok(())
        }
        WebhookCommand::Show { id } => {
            print_json(&client.get(&["v1", "webhooks", &id], &[]).await?)
        }
        WebhookCommand::Update {
            id,
            target,
            description,
        } => {
            let mut body = json!({});
            if let Some(url) = target {
                body["url"] = json!(url);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            print_json(&client.patch(&["v1", "webhooks", &id], &body).await?)
        }
        WebhookCommand::Remove { id } => {
            client.delete(&["v1", "webhooks", &id]).await?;
            println!("webhook {id}: removed");
            Ok(())
        }
        WebhookCommand::RotateSecret { id } => {
            let rotated = client
                .post(&["v1", "webhooks", &id, "rotate-secret"], &json!({}))
                .await?;
            println!("webhook  {id}");
            println!("secret   {}", text(&rotated["secret"]));
            Ok(())
        }
        WebhookCommand::Notifications { id, status, json } => {
            let query: Vec<(&str, String)> = status.map(|s| ("status", s)).into_iter().collect();
            let value = client
                .get(&["v1", "webhooks", &id, "notifications"], &query)
                .await?;
            if json {
                return print_json(&value);
            }
            let rows: Vec<Vec<String>> = items(&value)
                .iter()
                .map(|n| {
                    vec![
                        text(&n["id"]),
                        text(&n["run_id"]),
                        text(&n["status"]),
                        n["attempts"].to_string(),
                        one_line(&text(&n["last_error"]), 50),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no notifications");
            } else {
                print!(
                    "{}",
                    table(&["ID", "RUN", "STATUS", "ATTEMPTS", "LAST ERROR"], &rows)
                );
            }
            Ok(())
        }
        WebhookCommand::Resend { notification } => {
            let value = client
                .post(
                    &["v1", "notifications", &notification, "resend"],
                    &json!({}),
                )
                .await?;
            println!("notification {notification}: {}", text(&value["status"]));
            Ok(())
        }
    }
}

fn items(value: &Value) -> &[Value] {
    value["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
