//! `roster source add-sql|add-openapi|list|show|schema|query|remove`: the
//! tenant's company data sources (SQL databases, HTTP services).

use super::api_client::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::{anyhow, Result};
use serde_json::{json, Value};

/// `source add-sql NAME --url URL` names the database's URL, so the Roster
/// server is `--server` here (or `ROSTER_URL`).
#[derive(clap::Args)]
pub struct SourceArgs {
    #[command(flatten)]
    connection: super::ServerConnection,
    #[command(subcommand)]
    command: SourceCommand,
}

#[derive(clap::Subcommand)]
enum SourceCommand {
    /// Register a SQL database: `roster source add-sql NAME --url URL --allow TABLE[,TABLE…]`.
    /// Roster checks the tables exist and sets up read-only access.
    AddSql {
        name: String,
        /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB, mysql://…, mariadb://… or sqlite:PATH
        /// (stored encrypted).
        #[arg(long)]
        url: String,
        /// Tables agents may read: TABLE, SCHEMA.TABLE, TABLE(COL,COL) (comma-separated or repeated).
        #[arg(long, required = true, value_name = "TABLE")]
        allow: Vec<String>,
        /// What the data is, for the model.
        #[arg(long)]
        description: Option<String>,
        /// Most rows one query returns (default 200).
        #[arg(long)]
        max_rows: Option<u32>,
        /// Most bytes of table one query returns (default 65536).
        #[arg(long)]
        max_bytes: Option<u32>,
        /// Longest one query may run, in seconds (default 30).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Register an HTTP service from its OpenAPI 3 document: each operation
    /// becomes a tool `NAME__OPERATION`.
    AddOpenapi {
        name: String,
        /// The OpenAPI 3.0 or 3.1 document, JSON or YAML: a file, or an
        /// http(s) URL the CLI downloads.
        #[arg(long, value_name = "FILE|URL")]
        spec: String,
        /// Where requests go (default: the document's first server).
        #[arg(long)]
        base_url: Option<String>,
        /// Hosts requests and redirects may reach (default: the base URL's host).
        #[arg(long = "allow-host", value_delimiter = ',', value_name = "HOST")]
        allow_hosts: Vec<String>,
        /// Sent as `Authorization: Bearer TOKEN` (stored encrypted).
        #[arg(
            long,
            env = "ROSTER_SOURCE_BEARER_TOKEN",
            hide_env_values = true,
            conflicts_with = "key"
        )]
        bearer_token: Option<String>,
        /// Header that carries the service's API key, e.g. X-API-Key.
        #[arg(long, requires = "key", value_name = "HEADER")]
        key_header: Option<String>,
        /// The service's API key, sent in --key-header (stored encrypted).
        #[arg(
            long,
            env = "ROSTER_SOURCE_KEY",
            hide_env_values = true,
            requires = "key_header"
        )]
        key: Option<String>,
        /// Only these operations (operationIds, comma-separated or repeated).
        #[arg(long, value_delimiter = ',', value_name = "ID")]
        operations: Vec<String>,
        /// Longest one call may take, in seconds (default 30).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Longest response body shown to the model (default 65536).
        #[arg(long)]
        max_response_bytes: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List the registered sources.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one source (never its password or key).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The tables and columns agents of this source may read.
    Schema {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Run one read-only query as an agent would.
    Query {
        name: String,
        sql: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a source (and the read-only role Roster made for a database).
    Remove { name: String },
}

fn access(source: &Value) -> String {
    let access = &source["access"];
    match access["mode"].as_str() {
        Some("restricted_role") => format!(
            "as read-only role {} (created by Roster)",
            access["role"].as_str().unwrap_or_default()
        ),
        Some("connecting_role") => format!(
            "as role {} (sees only the allow-list)",
            access["role"].as_str().unwrap_or_default()
        ),
        Some("read_only_file") => "file opened read-only, reads checked by SQLite".to_owned(),
        _ => String::new(),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => one_line(s, 60),
        other => other.to_string(),
    }
}

/// Longest OpenAPI document the CLI reads.
const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// The document at `spec`: a local file, or an http(s) URL.
async fn read_document(spec: &str) -> Result<String> {
    if !(spec.starts_with("http://") || spec.starts_with("https://")) {
        return std::fs::read_to_string(spec).map_err(|e| anyhow!("cannot read {spec}: {e}"));
    }
    let response = reqwest::get(spec)
        .await
        .map_err(|e| anyhow!("cannot download {spec}: {e}"))?;
    if !response.status().is_success() {
        return Err(anyhow!(
            "cannot download {spec}: HTTP {}",
            response.status()
        ));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| anyhow!("cannot download {spec}: {e}"))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(anyhow!("{spec} is larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("{spec} is not UTF-8 text"))
}

fn list_of(page: &Value) -> &[Value] {
    page["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The source named `name` and its kind (`sql` or `http`), SQL first.
async fn find(client: &Client, name: &str) -> Result<(&'static str, Value)> {
    let sql_error = match client.get(&["v1", "sources", "sql", name], &[]).await {
        Ok(found) => return Ok(("sql", found)),
        Err(e) => e,
    };
    match client.get(&["v1", "sources", "http", name], &[]).await {
        Ok(found) => Ok(("http", found)),
        // Both missing is the common case; any other failure says more.
        Err(_) if sql_error.to_string().contains("not_found") => Err(anyhow!(
            "no source `{name}` (neither a SQL source nor an HTTP service)"
        )),
        Err(_) => Err(sql_error),
    }
}

fn show_http(service: &Value) {
    println!("name:     {}", service["name"].as_str().unwrap_or_default());
    println!(
        "api:      {} {}",
        service["title"].as_str().unwrap_or_default(),
        service["version"].as_str().unwrap_or_default()
    );
    println!(
        "base url: {}",
        service["base_url"].as_str().unwrap_or_default()
    );
    println!("hosts:    {}", strings(&service["allow_hosts"]).join(", "));
    match service["auth"]["type"].as_str() {
        Some("bearer") => println!("auth:     bearer token (stored encrypted)"),
        Some("api_key") => println!(
            "auth:     API key in {} (stored encrypted)",
            service["auth"]["header"].as_str().unwrap_or_default()
        ),
        _ => println!("auth:     none"),
    }
    let rows: Vec<Vec<String>> = service["operations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|op| {
            vec![
                op["tool"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{} {}",
                    op["method"].as_str().unwrap_or_default(),
                    op["path"].as_str().unwrap_or_default()
                ),
            ]
        })
        .collect();
    print!("{}", table(&["TOOL", "REQUEST"], &rows));
    for skipped in strings(&service["skipped"]) {
        println!("left out: {skipped}");
    }
}

pub async fn run(args: SourceArgs) -> Result<()> {
    let client = Client::new(&Connection::from(args.connection))?;
    let sql = |rest: &[&'static str]| {
        let mut path = vec!["v1", "sources", "sql"];
        path.extend_from_slice(rest);
        path
    };
    match args.command {
        SourceCommand::AddSql {
            name,
            url,
            allow,
            description,
            max_rows,
            max_bytes,
            timeout,
            json,
        } => {
            let mut body = json!({ "name": name, "url": url, "allow": allow });
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            if let Some(max_rows) = max_rows {
                body["max_rows"] = json!(max_rows);
            }
            if let Some(max_bytes) = max_bytes {
                body["max_bytes"] = json!(max_bytes);
            }
            if let Some(timeout) = timeout {
                body["timeout_secs"] = json!(timeout);
            }
            let created = client.post(&sql(&[]), &body).await?;
            if json {
                return print_json(&created);
            }
            println!(
                "added SQL source {} ({}, {}); agents reach it with the tool entry sql:{}",
                created["name"].as_str().unwrap_or_default(),
                created["location"].as_str().unwrap_or_default(),
                access(&created),
                created["name"].as_str().unwrap_or_default(),
            );
        }
        SourceCommand::AddOpenapi {
            name,
            spec,
            base_url,
            allow_hosts,
            bearer_token,
            key_header,
            key,
            operations,
            timeout,
            max_response_bytes,
            json,
        } => {
            let document = read_document(&spec).await?;
            let mut body = json!({ "name": name, "spec": document });
            if let Some(base_url) = base_url {
                body["base_url"] = json!(base_url);
            }
            if !allow_hosts.is_empty() {
                body["allow_hosts"] = json!(allow_hosts);
            }
            match (bearer_token, key_header, key) {
                (Some(token), None, None) => {
                    body["auth"] = json!({"type": "bearer", "token": token})
                }
                (None, Some(header), Some(value)) => {
                    body["auth"] = json!({"type": "api_key", "header": header, "value": value})
                }
                _ => {}
            }
            if !operations.is_empty() {
                body["operations"] = json!(operations);
            }
            if let Some(timeout) = timeout {
                body["timeout_secs"] = json!(timeout);
            }
            if let Some(max) = max_response_bytes {
                body["max_response_bytes"] = json!(max);
            }
            let created = client.post(&["v1", "sources", "http"], &body).await?;
            if json {
                return print_json(&created);
            }
            let count = created["operations"].as_array().map_or(0, Vec::len);
            println!(
                "added HTTP service {} ({count} operations as tools); agents reach it with the tool entry http:{}",
                created["name"].as_str().unwrap_or_default(),
                created["name"].as_str().unwrap_or_default(),
            );
            for skipped in strings(&created["skipped"]) {
                println!("left out: {skipped}");
            }
        }
        SourceCommand::List { json } => {
            let databases = client.get(&sql(&[]), &[]).await?;
            let services = client.get(&["v1", "sources", "http"], &[]).await?;
            if json {
                return print_json(&json!({"sql": databases["data"], "http": services["data"]}));
            }
            let mut rows: Vec<Vec<String>> = list_of(&databases)
                .iter()
                .map(|s| {
                    vec![
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        format!("sql/{}", s["engine"].as_str().unwrap_or_default()),
                        one_line(s["location"].as_str().unwrap_or_default(), 50),
                        one_line(&strings(&s["allow"]).join(","), 50),
                    ]
                })
                .collect();
            rows.extend(list_of(&services).iter().map(|s| {
                vec![
                    s["name"].as_str().unwrap_or_default().to_owned(),
                    "http".to_owned(),
                    one_line(s["base_url"].as_str().unwrap_or_default(), 50),
                    format!(
                        "{} operations",
                        s["operations"].as_array().map_or(0, Vec::len)
                    ),
                ]
            }));
            if rows.is_empty() {
                println!("no sources; add one with `roster source add-sql NAME --url URL --allow TABLE` or `roster source add-openapi NAME --spec FILE`");
            } else {
                print!("{}", table(&["NAME", "KIND", "LOCATION", "ALLOWS"], &rows));
            }
        }
        SourceCommand::Show { name, json } => {
            let (kind, source) = find(&client, &name).await?;
            if json {
                return print_json(&source);
            }
            if kind == "http" {
                show_http(&source);
                return Ok(());
            }
            println!("name:     {}", source["name"].as_str().unwrap_or_default());
            println!(
                "engine:   {}",
                source["engine"].as_str().unwrap_or_default()
            );
            println!(
                "location: {}",
                source["location"].as_str().unwrap_or_default()
            );
            println!("access:   {}", access(&source));
            println!("allow:    {}", strings(&source["allow"]).join(", "));
            if let Some(description) = source["description"].as_str() {
                println!("about:    {description}");
            }
            println!(
                "limits:   {} rows, {} bytes, {}s per query",
                source["max_rows"], source["max_bytes"], source["timeout_secs"]
            );
        }
        SourceCommand::Schema { name, json } => {
            let schema = client
                .get(&[&sql(&[])[..], &[name.as_str(), "schema"]].concat(), &[])
                .await?;
            if json {
                return print_json(&schema);
            }
            for t in schema["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let qualified = match t["schema"].as_str() {
                    Some(s) => format!("{s}.{}", t["name"].as_str().unwrap_or_default()),
                    None => t["name"].as_str().unwrap_or_default().to_owned(),
                };
                print!("{qualified} ({})", t["kind"].as_str().unwrap_or_default());
                match t["comment"].as_str() {
                    Some(comment) => println!(": {comment}"),
                    None => println!(),
                }
                for c in t["columns"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    print!(
                        "  {} {}{}",
                        c["name"].as_str().unwrap_or_default(),
                        c["data_type"].as_str().unwrap_or_default(),
                        if c["nullable"].as_bool() == Some(false) {
                            " not null"
                        } else {
                            ""
                        }
                    );
                    match c["comment"].as_str() {
                        Some(comment) => println!(" — {comment}"),
                        None => println!(),
                    }
                }
            }
        }
        SourceCommand::Query {
            name,
            sql: query,
            json,
        } => {
            let result = client
                .post(
                    &[&sql(&[])[..], &[name.as_str(), "query"]].concat(),
                    &json!({ "query": query }),
                )
                .await?;
            if json {
                return print_json(&result);
            }
            let headers: Vec<String> = strings(&result["columns"]);
            let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
            let rows: Vec<Vec<String>> = result["rows"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|row| {
                    row.as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(cell)
                        .collect()
                })
                .collect();
            print!("{}", table(&header_refs, &rows));
            if result["more_rows"].as_bool() == Some(true) {
                println!("(more rows than the source's max_rows)");
            } else if result["cut_for_size"].as_bool() == Some(true) {
                println!("(rows cut at the source's max_bytes)");
            }
        }
        SourceCommand::Remove { name } => {
            let (kind, _) = find(&client, &name).await?;
            client
                .delete(&["v1", "sources", kind, name.as_str()])
                .await?;
            println!("removed source {name}");
        }
    }
    Ok(())
}
