//! `roster mcp add|list|show|remove|tools`: the tenant's MCP servers.

use super::http::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::{anyhow, Result};
use serde_json::{json, Map, Value};

/// `mcp add NAME --url URL` names the MCP server's URL, so the Roster
/// server is `--server` here (or `ROSTER_URL`), not `--url` as elsewhere.
#[derive(clap::Args)]
pub struct McpArgs {
    #[command(flatten)]
    connection: super::ServerConnection,
    #[command(subcommand)]
    command: McpCommand,
}

#[derive(clap::Subcommand)]
enum McpCommand {
    /// Register a server: `roster mcp add NAME -- COMMAND ARGS…` (stdio,
    /// Roster starts it) or `roster mcp add NAME --url URL` (Streamable HTTP).
    Add {
        name: String,
        /// Streamable HTTP endpoint of the MCP server.
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// Environment for a stdio server, KEY=VALUE (repeatable; stored encrypted).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Header for an HTTP server, NAME=VALUE (repeatable; stored encrypted).
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// Working directory of a stdio server.
        #[arg(long)]
        cwd: Option<String>,
        /// Offer only these tools (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', value_name = "TOOL")]
        allow: Vec<String>,
        /// Longest one tool call may take, in seconds (default 60).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the registered servers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one server (credential names only, never values).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a server (its process is stopped).
    Remove { name: String },
    /// Start the server if needed and list its tools.
    Tools {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

fn pairs(items: &[String], what: &str) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for item in items {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("{what} `{item}` is not KEY=VALUE"))?;
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(map)
}

fn describe(server: &Value) -> String {
    match server["transport"].as_str() {
        Some("stdio") => {
            let mut words = vec![server["command"].as_str().unwrap_or_default().to_owned()];
            if let Some(args) = server["args"].as_array() {
                words.extend(args.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            words.join(" ")
        }
        _ => server["url"].as_str().unwrap_or_default().to_owned(),
    }
}

pub async fn run(args: McpArgs) -> Result<()> {
    let client = Client::new(&Connection::from(args.connection))?;
    match args.command {
        McpCommand::Add {
            name,
            url,
            env,
            headers,
            cwd,
            allow,
            timeout,
            command,
            json,
        } => {
            let mut body = json!({ "name": name });
            match (url, command.split_first()) {
                (Some(url), None) => body["url"] = json!(url),
                (None, Some((program, rest))) => {
                    body["command"] = json!(program);
                    body["args"] = json!(rest);
                }
                (Some(_), Some(_)) => {
                    return Err(anyhow!("give either --url or a command after --, not both"))
                }
                (None, None) => {
                    return Err(anyhow!(
                    "give a command after -- (roster mcp add NAME -- COMMAND ARGS…) or --url URL"
                ))
                }
            }
            if !env.is_empty() {
                body["env"] = Value::Object(pairs(&env, "--env")?);
            }
            if !headers.is_empty() {
                body["headers"] = Value::Object(pairs(&headers, "--header")?);
            }
            if let Some(cwd) = cwd {
                body["cwd"] = json!(cwd);
            }
            if !allow.is_empty() {
                body["allow"] = json!(allow);
            }
            if let Some(timeout) = timeout {
                body["timeout_secs"] = json!(timeout);
            }
            let created = client.post(&["v1", "mcp", "servers"], &body).await?;
            if json {
                print_json(&created)?;
            } else {
                println!(
                    "added MCP server {} ({})",
                    created["name"].as_str().unwrap_or_default(),
                    describe(&created)
                );
            }
        }
        McpCommand::List { json } => {
            let page = client.get(&["v1", "mcp", "servers"], &[]).await?;
            if json {
                return print_json(&page);
            }
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|s| {
                    vec![
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        s["transport"].as_str().unwrap_or_default().to_owned(),
                        one_line(&describe(s), 60),
                        match s["allow"].as_array() {
                            Some(tools) => tools
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(","),
                            None => "all".to_owned(),
                        },
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no MCP servers; add one with `roster mcp add NAME -- COMMAND ARGS…`");
            } else {
                print!(
                    "{}",
                    table(&["NAME", "TRANSPORT", "TARGET", "TOOLS"], &rows)
                );
            }
        }
        McpCommand::Show { name, json } => {
            let server = client.get(&["v1", "mcp", "servers", &name], &[]).await?;
            if json {
                return print_json(&server);
            }
            println!("name:     {}", server["name"].as_str().unwrap_or_default());
            println!("target:   {}", describe(&server));
            for (label, key) in [("env:", "env"), ("headers:", "headers")] {
                if let Some(names) = server[key].as_array().filter(|a| !a.is_empty()) {
                    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                    println!("{label:<9} {} (values stored encrypted)", names.join(", "));
                }
            }
            println!("timeout:  {}s", server["timeout_secs"]);
        }
        McpCommand::Remove { name } => {
            client.delete(&["v1", "mcp", "servers", &name]).await?;
            println!("removed MCP server {name}");
        }
        McpCommand::Tools { name, json } => {
            let tools = client
                .get(&["v1", "mcp", "servers", &name, "tools"], &[])
                .await?;
            if json {
                return print_json(&tools);
            }
            let rows: Vec<Vec<String>> = tools["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    vec![
                        t["model_name"].as_str().unwrap_or_default().to_owned(),
                        if t["allowed"].as_bool() == Some(true) {
                            "yes".to_owned()
                        } else {
                            "no".to_owned()
                        },
                        one_line(t["description"].as_str().unwrap_or_default(), 70),
                    ]
                })
                .collect();
            print!("{}", table(&["TOOL", "ALLOWED", "DESCRIPTION"], &rows));
        }
    }
    Ok(())
}
