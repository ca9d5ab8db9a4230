//! `roster mcp add|enable|catalogue|list|show|remove|tools`: the tenant's
//! MCP servers. Any key enables an entry of the operator's catalogue or
//! adds a Streamable HTTP server; `add NAME -- COMMAND` needs the admin key.

use super::api_client::Client;
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
    /// Register a server: `roster mcp add NAME --url URL` (Streamable HTTP),
    /// or `roster mcp add NAME -- COMMAND ARGS…` (stdio, admin key only;
    /// Roster runs it in the sandbox).
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
        /// Host path shown to a stdio server read-only (repeatable).
        #[arg(long = "read-only", value_name = "PATH")]
        read_only: Vec<String>,
        /// Give a stdio server the host's network (off by default).
        #[arg(long)]
        network: bool,
        #[command(flatten)]
        common: Common,
        /// The command and its arguments, after `--`.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Enable an entry of the operator's catalogue under NAME:
    /// `roster mcp enable NAME --from ENTRY --set KEY=VALUE --env KEY=VALUE`.
    Enable {
        name: String,
        /// The catalogue entry (`roster mcp catalogue` lists them).
        #[arg(long, value_name = "ENTRY")]
        from: String,
        /// A placeholder's value, KEY=VALUE (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// An environment variable the entry lets tenants set, KEY=VALUE
        /// (repeatable; stored encrypted).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// The stdio servers the operator offers, with what each needs.
    Catalogue {
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

/// Flags every way of registering takes.
#[derive(clap::Args)]
struct Common {
    /// Offer only these tools (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "TOOL")]
    allow: Vec<String>,
    /// Longest its start and each tool call may take, in seconds (default 60).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    #[arg(long)]
    json: bool,
}

impl Common {
    fn apply(&self, body: &mut Value) {
        if !self.allow.is_empty() {
            body["allow"] = json!(self.allow);
        }
        if let Some(timeout) = self.timeout {
            body["timeout_secs"] = json!(timeout);
        }
    }
}

async fn register(client: &Client, body: Value, json: bool) -> Result<()> {
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
    Ok(())
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
        Some("catalogue") => {
            let values: Vec<String> = server["values"]
                .as_object()
                .map(|values| {
                    values
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "catalogue {}{}",
                server["entry"].as_str().unwrap_or_default(),
                if values.is_empty() {
                    String::new()
                } else {
                    format!(" {}", values.join(" "))
                }
            )
        }
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
            read_only,
            network,
            common,
            command,
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
            if !read_only.is_empty() {
                body["read_only"] = json!(read_only);
            }
            if network {
                body["network"] = json!(true);
            }
            common.apply(&mut body);
            register(&client, body, common.json).await?;
        }
        McpCommand::Enable {
            name,
            from,
            set,
            env,
            common,
        } => {
            let mut body = json!({ "name": name, "from": from });
            if !set.is_empty() {
                body["set"] = Value::Object(pairs(&set, "--set")?);
            }
            if !env.is_empty() {
                body["env"] = Value::Object(pairs(&env, "--env")?);
            }
            common.apply(&mut body);
            register(&client, body, common.json).await?;
        }
        McpCommand::Catalogue { json } => {
            let page = client.get(&["v1", "mcp", "catalogue"], &[]).await?;
            if json {
                return print_json(&page);
            }
            let entries = page["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if entries.is_empty() {
                println!("the operator's catalogue is empty ([mcp.catalogue.NAME] in the server's config file)");
            }
            for entry in entries {
                println!(
                    "{}{}: {}",
                    entry["name"].as_str().unwrap_or_default(),
                    if entry["network"] == true {
                        " (network)"
                    } else {
                        ""
                    },
                    entry["description"].as_str().unwrap_or_default()
                );
                for p in entry["placeholders"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    println!(
                        "  --set {}=…  {} (pattern {}{})",
                        p["name"].as_str().unwrap_or_default(),
                        p["description"].as_str().unwrap_or_default(),
                        p["pattern"].as_str().unwrap_or_default(),
                        match p["default"].as_str() {
                            Some(default) => format!(", default {default}"),
                            None => ", required".to_owned(),
                        }
                    );
                }
                for name in entry["env"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    println!(
                        "  --env {}=…  (stored encrypted)",
                        name.as_str().unwrap_or_default()
                    );
                }
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
                println!("no MCP servers; enable one of the operator's with `roster mcp enable NAME --from ENTRY` (`roster mcp catalogue` lists them) or add one with `roster mcp add NAME --url URL`");
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
