//! `roster models`: the providers and models the server offers.

use super::api_client::Client;
use super::output::{print_json, table};
use super::Connection;
use anyhow::Result;
use serde_json::Value;

#[derive(clap::Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    conn: Connection,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn models(args: ModelsArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    let catalogue = client.get(&["v1", "models"], &[]).await?;
    if args.json {
        return print_json(&catalogue);
    }
    let default = catalogue["default"].as_str().unwrap_or_default();
    let mut rows = Vec::new();
    for provider in catalogue["providers"].as_array().into_iter().flatten() {
        let name = provider["name"].as_str().unwrap_or_default();
        let hosting = provider["hosting"].as_str().unwrap_or_default().to_owned();
        let models: Vec<&str> = provider["models"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if models.is_empty() {
            rows.push(vec![format!("{name}/*"), hosting.clone(), String::new()]);
        }
        for model in models {
            let route = format!("{name}/{model}");
            let mark = if route == default { "default" } else { "" };
            rows.push(vec![route, hosting.clone(), mark.to_owned()]);
        }
    }
    if rows.is_empty() {
        println!("no model provider is configured");
    } else {
        print!("{}", table(&["ROUTE", "HOSTING", ""], &rows));
    }
    if default.is_empty() {
        println!("no default model: give agents one with --model");
    }
    Ok(())
}
