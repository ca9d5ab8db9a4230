//! `roster limits show|set`: limits on runs executing at once.

use super::api_client::Client;
use super::output::{print_json, table};
use super::Connection;
use anyhow::{anyhow, Result};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct LimitsArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: LimitsCommand,
}

#[derive(clap::Subcommand)]
enum LimitsCommand {
    /// This key's tenant (or, with the admin key, `--tenant`'s): the limits
    /// in force and how many runs are running and waiting, per agent.
    Show {
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set a tenant's limits (admin key only); `none` falls back to the
    /// server's `[limits]`.
    Set {
        /// Tenant id or name.
        tenant: String,
        /// Most runs of the tenant at once.
        #[arg(long, value_name = "N|none")]
        runs: Option<String>,
        /// Most runs of one agent at once (unless the agent sets its own).
        #[arg(long, value_name = "N|none")]
        runs_per_agent: Option<String>,
    },
}

fn value(flag: &str, raw: Option<&str>) -> Result<Value> {
    match raw {
        None | Some("none") => Ok(Value::Null),
        Some(n) => n
            .parse::<u32>()
            .map(|n| json!(n))
            .map_err(|_| anyhow!("--{flag} must be a number or `none`, not `{n}`")),
    }
}

fn limit(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "none".to_owned(), |n| n.to_string())
}

pub async fn limits(args: LimitsArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    let shown = match args.command {
        LimitsCommand::Show { tenant, json } => {
            let value = match &tenant {
                Some(t) => client.get(&["v1", "tenants", t, "limits"], &[]).await?,
                None => client.get(&["v1", "limits"], &[]).await?,
            };
            if json {
                return print_json(&value);
            }
            value
        }
        LimitsCommand::Set {
            tenant,
            runs,
            runs_per_agent,
        } => {
            let body = json!({
                "runs": value("runs", runs.as_deref())?,
                "runs_per_agent": value("runs-per-agent", runs_per_agent.as_deref())?,
            });
            client
                .put(&["v1", "tenants", &tenant, "limits"], &body)
                .await?
        }
    };
    println!(
        "runs at once: {} (per agent: {}); running {}, waiting {}",
        limit(&shown["limits"]["runs"]),
        limit(&shown["limits"]["runs_per_agent"]),
        shown["running"],
        shown["waiting"]
    );
    let rows: Vec<Vec<String>> = shown["agents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            vec![
                a["agent"].as_str().unwrap_or_default().to_owned(),
                limit(&a["limit"]),
                a["running"].to_string(),
                a["waiting"].to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        print!(
            "{}",
            table(&["AGENT", "LIMIT", "RUNNING", "WAITING"], &rows)
        );
    }
    Ok(())
}
