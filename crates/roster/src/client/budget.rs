//! `roster budget list|set|remove` and `roster ledger summary`.

use super::api_client::Client;
use super::output::{print_json, table};
use super::Connection;
use anyhow::{bail, Result};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct BudgetArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: BudgetCommand,
}

#[derive(clap::Subcommand)]
enum BudgetCommand {
    /// The tenant's and its agents' daily budgets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set the tenant's budget, or an agent's with --agent.
    Set {
        #[arg(long)]
        agent: Option<String>,
        /// Tokens (in + out) per UTC day.
        #[arg(long)]
        tokens_per_day: Option<i64>,
        /// US dollars per UTC day (from the configured prices).
        #[arg(long)]
        cost_per_day: Option<f64>,
    },
    /// Remove the tenant's budget, or an agent's with --agent.
    Remove {
        #[arg(long)]
        agent: Option<String>,
    },
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn path(agent: Option<&str>) -> Vec<&str> {
    match agent {
        None => vec!["v1", "budgets", "tenant"],
        Some(agent) => vec!["v1", "budgets", "agents", agent],
    }
}

pub async fn budget(args: BudgetArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        BudgetCommand::List { json } => {
            let list = client.get(&["v1", "budgets"], &[]).await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|b| {
                    vec![
                        text(&b["scope"]),
                        text(&b["tokens_per_day"]),
                        text(&b["cost_usd_per_day"]),
                    ]
                })
                .collect();
            print!("{}", table(&["SCOPE", "TOKENS/DAY", "USD/DAY"], &rows));
        }
        BudgetCommand::Set {
            agent,
            tokens_per_day,
            cost_per_day,
        } => {
            if tokens_per_day.is_none() && cost_per_day.is_none() {
                bail!("give --tokens-per-day, --cost-per-day or both");
            }
            let mut body = json!({});
            if let Some(t) = tokens_per_day {
                body["tokens_per_day"] = json!(t);
            }
            if let Some(c) = cost_per_day {
                body["cost_usd_per_day"] = json!(c);
            }
            let set = client.put(&path(agent.as_deref()), &body).await?;
            println!(
                "budget of {}: {} tokens/day, {} USD/day",
                text(&set["scope"]),
                text(&set["tokens_per_day"]),
                text(&set["cost_usd_per_day"])
            );
        }
        BudgetCommand::Remove { agent } => {
            client.delete(&path(agent.as_deref())).await?;
            println!("removed the budget");
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct LedgerArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(clap::Subcommand)]
enum LedgerCommand {
    /// Model calls summed: calls, tokens and cost, grouped as asked.
    Summary {
        /// day, agent, provider, model, outcome (comma-separated).
        #[arg(long, default_value = "day")]
        group_by: String,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// A UTC day, 2026-12-03.
        #[arg(long)]
        day: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn ledger(args: LedgerArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    let LedgerCommand::Summary {
        group_by,
        agent,
        provider,
        model,
        day,
        json,
    } = args.command;
    let mut query = vec![("group_by", group_by.clone())];
    for (name, value) in [
        ("agent", agent),
        ("provider", provider),
        ("model", model),
        ("day", day),
    ] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    let summary = client.get(&["v1", "ledger", "summary"], &query).await?;
    if json {
        return print_json(&summary);
    }
    let groups: Vec<&str> = group_by
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    let mut headers: Vec<String> = groups.iter().map(|g| g.to_uppercase()).collect();
    headers.extend(["CALLS", "TOKENS IN", "TOKENS OUT", "USD"].map(str::to_owned));
    let rows: Vec<Vec<String>> = summary["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let mut row: Vec<String> = groups
                .iter()
                .map(|g| text(&r[if *g == "agent" { "agent_id" } else { g }]))
                .collect();
            row.extend([
                text(&r["calls"]),
                text(&r["tokens_in"]),
                text(&r["tokens_out"]),
                format!("{:.4}", r["cost_usd"].as_f64().unwrap_or(0.0)),
            ]);
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    print!("{}", table(&headers, &rows));
    Ok(())
}
