//! `roster remote add|list|show|remove|refresh`: the tenant's remote A2A
//! agents. An agent that lists `a2a:NAME` among its tools gets the tool
//! `ask_remote_NAME`.

use super::api_client::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::{anyhow, Result};
use serde_json::{json, Map, Value};

/// `remote add NAME --url URL` names the remote agent's URL, so the Roster
/// server is `--server` here (or `ROSTER_URL`), not `--url` as elsewhere.
#[derive(clap::Args)]
pub struct RemoteArgs {
    #[command(flatten)]
    connection: super::ServerConnection,
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(clap::Subcommand)]
enum RemoteCommand {
    /// Register a remote A2A agent by its card:
    /// `roster remote add NAME --url URL [--bearer-env VAR] [--header K=V]`.
    Add {
        name: String,
        /// The agent's card (a URL ending in `.json`), or its base URL (the
        /// card is then at `/.well-known/agent-card.json` under it).
        #[arg(long = "url", value_name = "URL")]
        card_url: String,
        /// The environment variable holding a bearer token for the remote
        /// (sent as `Authorization: Bearer …`; stored encrypted).
        #[arg(long, value_name = "VAR")]
        bearer_env: Option<String>,
        /// A header to send, NAME=VALUE (repeatable; stored encrypted).
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// The tool's description for models, instead of the card's.
        #[arg(long)]
        description: Option<String>,
        /// Longest one call may take, in seconds (default 120).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// List the registered remote agents.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one remote agent with its card's skills (credential names only,
    /// never values).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a remote agent (and every session's conversation with it).
    Remove { name: String },
    /// Fetch the remote's card again and keep what it says now.
    Refresh {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

fn pairs(items: &[String]) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for item in items {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("--header `{item}` is not NAME=VALUE"))?;
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(map)
}

/// The token in `var`, which must be set and not empty.
fn token_from(var: &str) -> Result<String> {
    match std::env::var(var) {
        Ok(token) if !token.trim().is_empty() => Ok(token),
        Ok(_) => Err(anyhow!("--bearer-env {var}: the variable is empty")),
        Err(_) => Err(anyhow!("--bearer-env {var}: the variable is not set")),
    }
}

fn endpoint(remote: &Value) -> String {
    format!(
        "{} (A2A {})",
        remote["card"]["endpoint"].as_str().unwrap_or_default(),
        remote["card"]["protocol"].as_str().unwrap_or_default()
    )
}

fn show(remote: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    println!("name:      {}", text(&remote["name"]));
    println!("tool:      {}", text(&remote["tool"]));
    println!("card:      {}", text(&remote["card_url"]));
    println!(
        "agent:     {} {}",
        text(&remote["card"]["name"]),
        text(&remote["card"]["version"])
    );
    let description = remote["description"]
        .as_str()
        .unwrap_or_else(|| remote["card"]["description"].as_str().unwrap_or_default());
    if !description.is_empty() {
        println!("about:     {}", one_line(description, 200));
    }
    println!("endpoint:  {}", endpoint(remote));
    match remote["headers"].as_array().filter(|a| !a.is_empty()) {
        Some(names) => {
            let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            println!("headers:   {} (values stored encrypted)", names.join(", "));
        }
        None => println!("headers:   none"),
    }
    println!("timeout:   {}s", remote["timeout_secs"]);
    let skills = remote["card"]["skills"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !skills.is_empty() {
        println!("skills:");
        for skill in skills {
            println!(
                "  {}: {}",
                text(&skill["name"]),
                one_line(skill["description"].as_str().unwrap_or_default(), 100)
            );
        }
    }
}

pub async fn remote(args: RemoteArgs) -> Result<()> {
    let client = Client::new(&Connection::from(args.connection))?;
    match args.command {
        RemoteCommand::Add {
            name,
            card_url,
            bearer_env,
            headers,
            description,
            timeout,
            json,
        } => {
            let mut body = json!({ "name": name, "url": card_url });
            if let Some(var) = bearer_env {
                body["bearer_token"] = json!(token_from(&var)?);
            }
            if !headers.is_empty() {
                body["headers"] = Value::Object(pairs(&headers)?);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            if let Some(timeout) = timeout {
                body["timeout_secs"] = json!(timeout);
            }
            let created = client.post(&["v1", "remotes"], &body).await?;
            if json {
                return print_json(&created);
            }
            println!(
                "added remote agent {} ({}): agents listing a2a:{} get the tool {}",
                created["name"].as_str().unwrap_or_default(),
                created["card"]["name"].as_str().unwrap_or_default(),
                created["name"].as_str().unwrap_or_default(),
                created["tool"].as_str().unwrap_or_default()
            );
        }
        RemoteCommand::List { json } => {
            let page = client.get(&["v1", "remotes"], &[]).await?;
            if json {
                return print_json(&page);
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    vec![
                        r["name"].as_str().unwrap_or_default().to_owned(),
                        one_line(r["card"]["name"].as_str().unwrap_or_default(), 30),
                        one_line(&endpoint(r), 60),
                        if r["credential_set"] == true {
                            "set".to_owned()
                        } else {
                            "none".to_owned()
                        },
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no remote agents; register one with `roster remote add NAME --url URL`");
            } else {
                print!(
                    "{}",
                    table(&["NAME", "AGENT", "ENDPOINT", "CREDENTIAL"], &rows)
                );
            }
        }
        RemoteCommand::Show { name, json } => {
            let remote = client.get(&["v1", "remotes", &name], &[]).await?;
            if json {
                return print_json(&remote);
            }
            show(&remote);
        }
        RemoteCommand::Remove { name } => {
            client.delete(&["v1", "remotes", &name]).await?;
            println!("removed remote agent {name}");
        }
        RemoteCommand::Refresh { name, json } => {
            let remote = client
                .post(&["v1", "remotes", &name, "refresh"], &json!({}))
                .await?;
            if json {
                return print_json(&remote);
            }
            println!("refreshed remote agent {name}");
            show(&remote);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_name_value_pairs() {
        let map = pairs(&["X-Key=a=b".to_owned()]).expect("pairs");
        assert_eq!(map["X-Key"], "a=b");
        assert!(pairs(&["nothing".to_owned()]).is_err());
    }
}
