//! `roster source add-sql|list|show|schema|query|remove`: the tenant's
//! company data sources (SQL databases).

use super::http::Client;
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::Result;
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
    /// List the registered sources.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one source (never its password).
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
    /// Remove a source (and the read-only role Roster made for it).
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
        SourceCommand::List { json } => {
            let page = client.get(&sql(&[]), &[]).await?;
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
                        s["engine"].as_str().unwrap_or_default().to_owned(),
                        one_line(s["location"].as_str().unwrap_or_default(), 50),
                        one_line(&strings(&s["allow"]).join(","), 50),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!(
                    "no sources; add one with `roster source add-sql NAME --url URL --allow TABLE`"
                );
            } else {
                print!("{}", table(&["NAME", "ENGINE", "LOCATION", "ALLOW"], &rows));
            }
        }
        SourceCommand::Show { name, json } => {
            let source = client
                .get(&[&sql(&[])[..], &[name.as_str()]].concat(), &[])
                .await?;
            if json {
                return print_json(&source);
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
            client
                .delete(&[&sql(&[])[..], &[name.as_str()]].concat())
                .await?;
            println!("removed source {name}");
        }
    }
    Ok(())
}
