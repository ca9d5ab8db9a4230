//! `roster block list|show|set|add|remove`: an agent's pinned memory
//! blocks, read and edited by people. `--user`, `--session` and
//! `--template` pick whose row (a user's or a session's copy, or the
//! agent's own); without them a key bound to a user means its own copies.

use super::api_client::{decode, Client};
use super::output::{one_line, print_json, table, time};
use super::Connection;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::Method;
use roster_core::agent::Agent;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BlockArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: BlockCommand,
}

/// Whose row: at most one of these.
#[derive(clap::Args)]
#[group(multiple = false)]
struct OwnerFlags {
    /// A user's copy (of `user` blocks).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// A session's copies (of `session` blocks, and of `user` blocks for
    /// its user).
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// The agent's own rows: the values of `agent` blocks and the templates
    /// of `user` and `session` blocks.
    #[arg(long)]
    template: bool,
}

impl OwnerFlags {
    fn query(&self) -> Vec<(&'static str, String)> {
        let owner = match (&self.user, &self.session, self.template) {
            (Some(user), _, _) => format!("user:{user}"),
            (_, Some(session), _) => format!("session:{session}"),
            (_, _, true) => "agent".to_owned(),
            _ => return vec![],
        };
        vec![("owner", owner)]
    }
}

#[derive(clap::Subcommand)]
enum BlockCommand {
    /// The blocks of an agent's current version: the agent's values and
    /// templates, and your (or --user's / --session's) copies.
    List {
        /// Agent name or id.
        agent: String,
        #[command(flatten)]
        owner: OwnerFlags,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// One block's value and its history (who changed it, when).
    Show {
        agent: String,
        label: String,
        #[command(flatten)]
        owner: OwnerFlags,
        #[arg(long)]
        json: bool,
    },
    /// Set a block's value and/or limit (a new version of that row).
    Set {
        agent: String,
        label: String,
        /// The new value (or use --file).
        #[arg(conflicts_with = "file")]
        value: Option<String>,
        /// Read the new value from a file (`-` for stdin).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// New size limit in characters.
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Refuse unless the row is at this version.
        #[arg(long, value_name = "N")]
        expected_version: Option<i64>,
        #[command(flatten)]
        owner: OwnerFlags,
    },
    /// Add a block to the agent: a new agent version.
    Add {
        agent: String,
        /// `LABEL[:SCOPE]=VALUE`; SCOPE is `agent` (default), `user` or
        /// `session`, and VALUE the template of `user`/`session` blocks.
        block: String,
        /// Size limit in characters (default 5000).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Remove a block from the agent: a new agent version (sessions on
    /// older versions keep it).
    Remove { agent: String, label: String },
}

/// `LABEL[:SCOPE]=VALUE` as the API's block: labels hold no `:` or `=`, so
/// the value may contain both.
pub(super) fn parse_block(raw: &str, flag: &str) -> Result<Map<String, Value>> {
    let (head, value) = raw
        .split_once('=')
        .filter(|(head, _)| !head.is_empty())
        .ok_or_else(|| anyhow!("invalid {flag} `{raw}`: expected LABEL[:SCOPE]=VALUE"))?;
    let (label, scope) = match head.split_once(':') {
        Some((label, scope)) => (label, Some(scope)),
        None => (head, None),
    };
    if label.is_empty() {
        bail!("invalid {flag} `{raw}`: expected LABEL[:SCOPE]=VALUE");
    }
    if let Some(scope) = scope {
        if !matches!(scope, "agent" | "user" | "session" | "shared") {
            bail!(
                "invalid {flag} `{raw}`: the scope `{scope}` is not agent, user, session or shared"
            );
        }
    }
    let mut block = Map::new();
    block.insert("label".into(), json!(label));
    block.insert("value".into(), json!(value));
    if let Some(scope) = scope {
        block.insert("scope".into(), json!(scope));
    }
    Ok(block)
}

#[derive(Deserialize)]
struct View {
    label: String,
    scope: String,
    owner: String,
    value: String,
    limit: u32,
    version: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
struct Version {
    version: i64,
    operation: String,
    principal: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn run(args: BlockArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        BlockCommand::List { agent, owner, json } => {
            let answer = client
                .get(&["v1", "agents", &agent, "blocks"], &owner.query())
                .await?;
            if json {
                return print_json(&answer);
            }
            list(answer)
        }
        BlockCommand::Show {
            agent,
            label,
            owner,
            json,
        } => {
            let answer = client
                .get(&["v1", "agents", &agent, "blocks", &label], &owner.query())
                .await?;
            if json {
                return print_json(&answer);
            }
            show(answer)
        }
        BlockCommand::Set {
            agent,
            label,
            value,
            file,
            limit,
            expected_version,
            owner,
        } => {
            let value = match (value, file) {
                (Some(value), _) => Some(value),
                (None, Some(path)) => Some(read_value(&path)?),
                (None, None) => None,
            };
            if value.is_none() && limit.is_none() {
                bail!("nothing to set: give a VALUE, --file or --limit");
            }
            let mut body = Map::new();
            if let Some(value) = value {
                body.insert("value".into(), json!(value));
            }
            if let Some(limit) = limit {
                body.insert("limit".into(), json!(limit));
            }
            if let Some(version) = expected_version {
                body.insert("expected_version".into(), json!(version));
            }
            let answer = client
                .call(
                    Method::PATCH,
                    &["v1", "agents", &agent, "blocks", &label],
                    &owner.query(),
                    Some(&Value::Object(body)),
                )
                .await?;
            let set: View = decode(answer)?;
            println!(
                "set block {} ({}) of {} on agent {agent}: version {}, {}/{} characters",
                set.label,
                set.scope,
                set.owner,
                set.version,
                set.value.chars().count(),
                set.limit
            );
            Ok(())
        }
        BlockCommand::Add {
            agent,
            block,
            limit,
        } => {
            let mut spec = parse_block(&block, "block")?;
            if let Some(limit) = limit {
                spec.insert("limit".into(), json!(limit));
            }
            let scope = spec
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("agent")
                .to_owned();
            let label = spec.get("label").cloned().unwrap_or_default();
            let answer = client
                .post(&["v1", "agents", &agent, "blocks"], &Value::Object(spec))
                .await?;
            let updated: Agent = decode(answer)?;
            println!(
                "added block {} (scope {scope}) to agent {}: version {}",
                label.as_str().unwrap_or_default(),
                updated.name,
                updated.version
            );
            Ok(())
        }
        BlockCommand::Remove { agent, label } => {
            let answer = client
                .call(
                    Method::DELETE,
                    &["v1", "agents", &agent, "blocks", &label],
                    &[],
                    None,
                )
                .await?;
            let updated: Agent = decode(answer)?;
            println!(
                "removed block {label} from agent {}: version {}",
                updated.name, updated.version
            );
            Ok(())
        }
    }
}

fn list(answer: Value) -> Result<()> {
    #[derive(Deserialize)]
    struct List {
        version: i64,
        data: Vec<View>,
    }
    let list: List = decode(answer)?;
    if list.data.is_empty() {
        eprintln!("agent version {} has no memory blocks; add one with `roster block add AGENT LABEL[:SCOPE]=VALUE`", list.version);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .data
        .iter()
        .map(|b| {
            vec![
                b.label.clone(),
                b.scope.clone(),
                b.owner.clone(),
                b.version.to_string(),
                format!("{}/{}", b.value.chars().count(), b.limit),
                one_line(&b.value, 60),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["LABEL", "SCOPE", "OWNER", "VERSION", "CHARS", "VALUE"],
            &rows
        )
    );
    Ok(())
}

fn show(answer: Value) -> Result<()> {
    let history: Vec<Version> = decode(
        answer
            .get("history")
            .cloned()
            .unwrap_or(Value::Array(vec![])),
    )?;
    let block: View = decode(answer)?;
    let made = if block.version == 0 {
        " (not made yet: the template)"
    } else {
        ""
    };
    println!(
        "{} ({} block) of {}: version {}{made}, {}/{} characters, updated {}",
        block.label,
        block.scope,
        block.owner,
        block.version,
        block.value.chars().count(),
        block.limit,
        time(&block.updated_at)
    );
    println!("{}", block.value);
    if !history.is_empty() {
        let rows: Vec<Vec<String>> = history
            .iter()
            .map(|v| {
                vec![
                    v.version.to_string(),
                    v.operation.clone(),
                    v.principal.clone(),
                    time(&v.created_at),
                ]
            })
            .collect();
        println!();
        print!("{}", table(&["VERSION", "OPERATION", "BY", "AT"], &rows));
    }
    Ok(())
}

fn read_value(path: &std::path::Path) -> Result<String> {
    if path == std::path::Path::new("-") {
        return std::io::read_to_string(std::io::stdin())
            .context("cannot read the value from stdin");
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the value from {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_parse_with_an_optional_scope() {
        let parsed = parse_block("human:user=Name: Ada", "--block").ok();
        assert_eq!(
            parsed.map(Value::Object),
            Some(json!({"label": "human", "value": "Name: Ada", "scope": "user"}))
        );
        let parsed = parse_block("notes=a=b:c", "--block").ok();
        assert_eq!(
            parsed.map(Value::Object),
            Some(json!({"label": "notes", "value": "a=b:c"}))
        );
        for bad in ["novalue", "=x", ":user=x", "human:everyone=x"] {
            assert!(parse_block(bad, "--block").is_err(), "{bad}");
        }
    }
}
