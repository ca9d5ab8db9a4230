//! `roster agent create|list|show|update|versions|rollback|delete`.

use super::api_client::{decode, Client};
use super::output::{print_json, table};
use super::Connection;
use anyhow::{anyhow, bail, Context, Result};
use roster_core::agent::Agent;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(clap::Subcommand)]
enum AgentCommand {
    /// Create an agent (version 1).
    Create(CreateArgs),
    /// List agents: name, id, version, model.
    List {
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show an agent's current version as JSON.
    Show {
        /// Agent name or id.
        agent: String,
        /// Also include the agent's memory blocks (`memory_blocks`).
        #[arg(long)]
        memory: bool,
    },
    /// Change an agent's configuration; stores a new version and prints
    /// what changed.
    Update(UpdateArgs),
    /// List an agent's versions, newest first.
    Versions {
        /// Agent name or id.
        agent: String,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier version's configuration current again (stored as a
    /// new version).
    Rollback {
        /// Agent name or id.
        agent: String,
        /// The version to go back to.
        version: i64,
    },
    /// Delete an agent.
    Delete {
        /// Agent name or id.
        agent: String,
    },
}

/// Configuration flags shared by `create` and `update`.
#[derive(clap::Args)]
struct ConfigFlags {
    /// The agent's instructions (system prompt).
    #[arg(long, value_name = "TEXT", conflicts_with = "instructions_file")]
    instructions: Option<String>,
    /// Read the instructions from a file (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    instructions_file: Option<PathBuf>,
    /// What the agent does, in a sentence: agents that have it as a tool
    /// (`--tool agent:NAME`) read it.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// A fallback route `provider/model`, tried in order (repeatable).
    #[arg(long = "fallback", value_name = "ROUTE")]
    fallbacks: Vec<String>,
    /// A tool the agent may call, e.g. `memory_append` (repeatable).
    #[arg(long = "tool", value_name = "NAME")]
    tools: Vec<String>,
    /// Upper bound on model calls in one run.
    #[arg(long, value_name = "N")]
    max_steps: Option<u32>,
    /// `required`: the first model call of each run must call one of the
    /// agent's tools (small local models seldom decide to on their own);
    /// `auto` lets the model choose.
    #[arg(long, value_name = "CHOICE", value_parser = ["auto", "required"])]
    tool_choice: Option<String>,
    /// What a message to a busy session does unless it says: `queue` (wait
    /// behind the run in progress), `reject` (refuse), `interrupt` (cancel
    /// it, then run the message) or `rollback` (cancel it and drop its items
    /// from the history the model sees, then run the message).
    #[arg(long, value_name = "POLICY", value_parser = ["queue", "reject", "interrupt", "rollback"])]
    if_busy: Option<String>,
    /// Token budget for the assembled context.
    #[arg(long, value_name = "N")]
    context_tokens: Option<u32>,
    /// A knowledge source the agent may search and cite (repeatable).
    #[arg(long = "knowledge", value_name = "SOURCE")]
    knowledge: Vec<String>,
    /// Settings for long-term memory as JSON, e.g.
    /// `{"strategies": [{"kind": "semantic"}]}`.
    #[arg(long, value_name = "JSON")]
    memory: Option<String>,
    /// A webhook (`whk_…`) told when any run of the agent finishes
    /// (repeatable; on update, replaces the list).
    #[arg(long = "notify", value_name = "WEBHOOK")]
    notify: Vec<String>,
    /// Most of this agent's runs executing at once (`none`: the tenant's
    /// per-agent limit).
    #[arg(long, value_name = "N|none")]
    max_running: Option<String>,
}

/// `--max-running` as the API takes it: a number, or `null` for `none`.
fn max_running(flags: &ConfigFlags) -> Result<Option<Value>> {
    match flags.max_running.as_deref() {
        None => Ok(None),
        Some("none") => Ok(Some(Value::Null)),
        Some(n) => n
            .parse::<u32>()
            .map(|n| Some(json!(n)))
            .map_err(|_| anyhow!("--max-running must be a number or `none`, not `{n}`")),
    }
}

/// `--memory` as a JSON object, checked before anything is sent.
fn memory_settings(flags: &ConfigFlags) -> Result<Option<Value>> {
    let Some(raw) = &flags.memory else {
        return Ok(None);
    };
    let value: Value =
        serde_json::from_str(raw).map_err(|e| anyhow!("--memory is not valid JSON: {e}"))?;
    if !value.is_object() {
        bail!("--memory must be a JSON object");
    }
    Ok(Some(value))
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The agent's name (letters, digits, `-`, `_`, `.`).
    name: String,
    /// Model route `provider/model`, e.g. `openai/gpt-4.1-mini`; unset,
    /// the server's default model (`roster models`).
    #[arg(long, value_name = "ROUTE")]
    model: Option<String>,
    #[command(flatten)]
    config: ConfigFlags,
    /// A memory block pinned to the context, `LABEL[:SCOPE]=VALUE`
    /// (repeatable). SCOPE: `agent` (default; one value for all users),
    /// `user` (one copy per user, VALUE its template, e.g. `human:user=`),
    /// `session`, or `shared` (the tenant's block of that label, one value
    /// for every agent that attaches it; VALUE is used only by the first).
    #[arg(long = "block", value_name = "LABEL[:SCOPE]=VALUE")]
    blocks: Vec<String>,
    /// A memory block's size limit in characters, `LABEL=N` (repeatable; a
    /// label without --block gets an empty block).
    #[arg(long = "block-limit", value_name = "LABEL=N")]
    block_limits: Vec<String>,
    /// Print the created agent as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct UpdateArgs {
    /// Agent name or id.
    agent: String,
    /// Model route `provider/model`.
    #[arg(long, value_name = "ROUTE")]
    model: Option<String>,
    #[command(flatten)]
    config: ConfigFlags,
    /// Remove all fallback routes.
    #[arg(long, conflicts_with = "fallbacks")]
    no_fallbacks: bool,
    /// Remove all tools.
    #[arg(long, conflicts_with = "tools")]
    no_tools: bool,
    /// Add a tool to the current list (repeatable).
    #[arg(long = "add-tool", value_name = "NAME", conflicts_with_all = ["tools", "no_tools"])]
    add_tools: Vec<String>,
    /// Remove a tool from the current list (repeatable).
    #[arg(long = "remove-tool", value_name = "NAME", conflicts_with_all = ["tools", "no_tools"])]
    remove_tools: Vec<String>,
    /// Add a knowledge source to the current list (repeatable).
    #[arg(
        long = "add-knowledge",
        value_name = "SOURCE",
        conflicts_with = "knowledge"
    )]
    add_knowledge: Vec<String>,
    /// Remove a knowledge source from the current list (repeatable).
    #[arg(
        long = "remove-knowledge",
        value_name = "SOURCE",
        conflicts_with = "knowledge"
    )]
    remove_knowledge: Vec<String>,
    /// Add a memory block to the current ones, `LABEL[:SCOPE]=VALUE`
    /// (repeatable).
    #[arg(long = "add-block", value_name = "LABEL[:SCOPE]=VALUE")]
    add_blocks: Vec<String>,
    /// Remove a memory block by label (repeatable); its values and history
    /// stay for sessions on older versions.
    #[arg(long = "remove-block", value_name = "LABEL")]
    remove_blocks: Vec<String>,
    /// Print the updated agent as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: AgentArgs) -> Result<()> {
    let conn = &args.conn;
    match args.command {
        AgentCommand::Create(create) => create_agent(conn, create).await,
        AgentCommand::List { json } => list(conn, json).await,
        AgentCommand::Show { agent, memory } => show(conn, &agent, memory).await,
        AgentCommand::Update(update) => update_agent(conn, update).await,
        AgentCommand::Versions { agent, json } => versions(conn, &agent, json).await,
        AgentCommand::Rollback { agent, version } => {
            let client = Client::new(conn)?;
            let value = client
                .post(
                    &["v1", "agents", &agent, "rollback"],
                    &json!({ "version": version }),
                )
                .await?;
            report_change(&value, Some(&format!("version {version} restored")), &[])
        }
        AgentCommand::Delete { agent } => {
            let client = Client::new(conn)?;
            let found: Agent = decode(client.get(&["v1", "agents", &agent], &[]).await?)?;
            client.delete(&["v1", "agents", found.id.as_str()]).await?;
            println!("deleted agent {} ({})", found.name, found.id);
            Ok(())
        }
    }
}

async fn create_agent(conn: &Connection, args: CreateArgs) -> Result<()> {
    // Local input first: a typo should not need a server or a key.
    let blocks = memory_blocks(&args.blocks, &args.block_limits)?;
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    if let Some(model) = &args.model {
        body.insert("model".into(), json!(model));
    }
    if let Some(instructions) = instructions(&args.config)? {
        body.insert("instructions".into(), json!(instructions));
    }
    if let Some(description) = &args.config.description {
        body.insert("description".into(), json!(description));
    }
    body.insert("fallbacks".into(), json!(args.config.fallbacks));
    body.insert("tools".into(), json!(args.config.tools));
    body.insert("memory_blocks".into(), Value::Array(blocks));
    if let Some(n) = args.config.max_steps {
        body.insert("max_steps".into(), json!(n));
    }
    if let Some(choice) = &args.config.tool_choice {
        body.insert("tool_choice".into(), json!(choice));
    }
    if let Some(policy) = &args.config.if_busy {
        body.insert("if_busy".into(), json!(policy));
    }
    if !args.config.notify.is_empty() {
        body.insert("notify".into(), json!(args.config.notify));
    }
    if let Some(max) = max_running(&args.config)? {
        body.insert("max_running".into(), max);
    }
    if let Some(n) = args.config.context_tokens {
        body.insert("context_tokens".into(), json!(n));
    }
    body.insert("knowledge".into(), json!(args.config.knowledge));
    if let Some(memory) = memory_settings(&args.config)? {
        body.insert("memory".into(), memory);
    }
    let client = Client::new(conn)?;
    let value = client.post(&["v1", "agents"], &Value::Object(body)).await?;
    if args.json {
        return print_json(&value);
    }
    let agent: Agent = decode(value.clone())?;
    println!(
        "created agent {} ({}) version {}",
        agent.name, agent.id, agent.version
    );
    print_warnings(&value);
    Ok(())
}

/// The server's warnings (e.g. an unconfigured provider), on stderr.
fn print_warnings(answer: &Value) {
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        eprintln!(
            "warning: {}",
            warning
                .as_str()
                .map_or_else(|| warning.to_string(), str::to_owned)
        );
    }
}

/// `updated agent NAME (ID) to version N`, then one line per changed field
/// (but those in `skip`, which the caller reports itself).
fn report_change(answer: &Value, what: Option<&str>, skip: &[&str]) -> Result<()> {
    let agent: Agent = decode(answer.clone())?;
    let changes: Vec<roster_core::agent_diff::ConfigChange> =
        serde_json::from_value(answer["changes"].clone()).unwrap_or_default();
    if changes.is_empty() {
        println!(
            "agent {} ({}) unchanged at version {}: nothing to change",
            agent.name, agent.id, agent.version
        );
    } else {
        let what = what.map(|w| format!(" ({w})")).unwrap_or_default();
        println!(
            "updated agent {} ({}) to version {}{what}:",
            agent.name, agent.id, agent.version
        );
        for change in changes.iter().filter(|c| !skip.contains(&c.field.as_str())) {
            println!("  {}", change.describe());
        }
    }
    print_warnings(answer);
    Ok(())
}

async fn versions(conn: &Connection, agent: &str, json: bool) -> Result<()> {
    let client = Client::new(conn)?;
    let value = client
        .get(&["v1", "agents", agent, "versions"], &[])
        .await?;
    if json {
        return print_json(&value);
    }
    let current = value["current"].as_i64();
    let rows: Vec<Vec<String>> = value["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let mark = if v["version"].as_i64() == current {
                "*"
            } else {
                ""
            };
            vec![
                format!("{}{mark}", v["version"]),
                v["created_at"].as_str().unwrap_or_default().to_owned(),
                v["config"]["model"].as_str().unwrap_or_default().to_owned(),
                v["config"]["tools"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["VERSION", "CREATED", "MODEL", "TOOLS"], &rows)
    );
    Ok(())
}

async fn list(conn: &Connection, json: bool) -> Result<()> {
    let client = Client::new(conn)?;
    let value = client.get(&["v1", "agents"], &[]).await?;
    if json {
        return print_json(&value);
    }
    #[derive(serde::Deserialize)]
    struct List {
        data: Vec<Agent>,
    }
    let list: List = decode(value)?;
    if list.data.is_empty() {
        eprintln!("no agents yet; create one with `roster agent create NAME --model ROUTE`");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .data
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.id.to_string(),
                a.version.to_string(),
                a.config.model.clone(),
            ]
        })
        .collect();
    print!("{}", table(&["NAME", "ID", "VERSION", "MODEL"], &rows));
    Ok(())
}

async fn show(conn: &Connection, agent: &str, memory: bool) -> Result<()> {
    let client = Client::new(conn)?;
    let mut value = client.get(&["v1", "agents", agent], &[]).await?;
    if memory {
        let mut answer = client.get(&["v1", "agents", agent, "memory"], &[]).await?;
        let blocks = answer
            .get_mut("blocks")
            .map(Value::take)
            .ok_or_else(|| anyhow!("unexpected response from the server: no `blocks`"))?;
        if let Value::Object(fields) = &mut value {
            fields.insert("memory_blocks".into(), blocks);
        }
    }
    print_json(&value)
}

async fn update_agent(conn: &Connection, args: UpdateArgs) -> Result<()> {
    let mut body = Map::new();
    if let Some(model) = &args.model {
        body.insert("model".into(), json!(model));
    }
    if let Some(instructions) = instructions(&args.config)? {
        body.insert("instructions".into(), json!(instructions));
    }
    if let Some(description) = &args.config.description {
        body.insert("description".into(), json!(description));
    }
    if args.no_fallbacks || !args.config.fallbacks.is_empty() {
        body.insert("fallbacks".into(), json!(args.config.fallbacks));
    }
    if args.no_tools || !args.config.tools.is_empty() {
        body.insert("tools".into(), json!(args.config.tools));
    }
    for (field, list) in [
        ("add_tools", &args.add_tools),
        ("remove_tools", &args.remove_tools),
        ("add_knowledge", &args.add_knowledge),
        ("remove_knowledge", &args.remove_knowledge),
    ] {
        if !list.is_empty() {
            body.insert(field.into(), json!(list));
        }
    }
    if let Some(n) = args.config.max_steps {
        body.insert("max_steps".into(), json!(n));
    }
    if let Some(choice) = &args.config.tool_choice {
        body.insert("tool_choice".into(), json!(choice));
    }
    if let Some(policy) = &args.config.if_busy {
        body.insert("if_busy".into(), json!(policy));
    }
    if !args.config.notify.is_empty() {
        body.insert("notify".into(), json!(args.config.notify));
    }
    if let Some(max) = max_running(&args.config)? {
        body.insert("max_running".into(), max);
    }
    if let Some(n) = args.config.context_tokens {
        body.insert("context_tokens".into(), json!(n));
    }
    if !args.config.knowledge.is_empty() {
        body.insert("knowledge".into(), json!(args.config.knowledge));
    }
    if let Some(memory) = memory_settings(&args.config)? {
        body.insert("memory".into(), memory);
    }
    let added = args
        .add_blocks
        .iter()
        .map(|raw| super::block::parse_block(raw, "--add-block").map(Value::Object))
        .collect::<Result<Vec<_>>>()?;
    if !added.is_empty() {
        body.insert("add_memory_blocks".into(), Value::Array(added.clone()));
    }
    if !args.remove_blocks.is_empty() {
        body.insert("remove_memory_blocks".into(), json!(args.remove_blocks));
    }
    if body.is_empty() {
        bail!("nothing to update: pass --model, --instructions, --instructions-file, --description, --fallback, --no-fallbacks, --tool, --no-tools, --add-tool, --remove-tool, --max-steps, --context-tokens, --knowledge, --add-knowledge, --remove-knowledge, --memory, --add-block or --remove-block");
    }
    let client = Client::new(conn)?;
    let value = client
        .patch(&["v1", "agents", &args.agent], &Value::Object(body))
        .await?;
    if args.json {
        return print_json(&value);
    }
    let blocks_named = !added.is_empty() || !args.remove_blocks.is_empty();
    let skip: &[&str] = if blocks_named {
        &["memory_blocks"]
    } else {
        &[]
    };
    report_change(&value, None, skip)?;
    for label in &args.remove_blocks {
        println!("  removed block {label}");
    }
    for block in &added {
        println!(
            "  added block {} (scope {})",
            block["label"].as_str().unwrap_or_default(),
            block["scope"].as_str().unwrap_or("agent")
        );
    }
    Ok(())
}

fn instructions(flags: &ConfigFlags) -> Result<Option<String>> {
    match (&flags.instructions, &flags.instructions_file) {
        (Some(text), _) => Ok(Some(text.clone())),
        (None, Some(path)) => read_instructions(path).map(Some),
        (None, None) => Ok(None),
    }
}

fn read_instructions(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        return std::io::read_to_string(std::io::stdin())
            .context("cannot read the instructions from stdin");
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the instructions file {}", path.display()))
}

/// `--block LABEL=VALUE` and `--block-limit LABEL=N` into the API's
/// `memory_blocks`, in the order the labels first appear.
fn memory_blocks(blocks: &[String], limits: &[String]) -> Result<Vec<Value>> {
    struct Spec {
        label: String,
        block: Map<String, Value>,
        limit: Option<u32>,
    }
    let mut specs: Vec<Spec> = Vec::new();
    for raw in blocks {
        let block = super::block::parse_block(raw, "--block")?;
        let label = block["label"].as_str().unwrap_or_default().to_owned();
        if specs.iter().any(|s| s.label == label) {
            bail!("--block `{label}` is given twice");
        }
        specs.push(Spec {
            label,
            block,
            limit: None,
        });
    }
    for raw in limits {
        let (label, n) = split_pair(raw)
            .ok_or_else(|| anyhow!("invalid --block-limit `{raw}`: expected LABEL=N"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| anyhow!("invalid --block-limit `{raw}`: `{n}` is not a whole number"))?;
        match specs.iter_mut().find(|s| s.label == label) {
            Some(spec) if spec.limit.is_some() => {
                bail!("--block-limit `{label}` is given twice")
            }
            Some(spec) => spec.limit = Some(n),
            None => specs.push(Spec {
                label: label.to_owned(),
                block: super::block::parse_block(&format!("{label}="), "--block-limit")?,
                limit: Some(n),
            }),
        }
    }
    Ok(specs
        .into_iter()
        .map(|mut s| {
            if let Some(limit) = s.limit {
                s.block.insert("limit".into(), json!(limit));
            }
            Value::Object(s.block)
        })
        .collect())
}

/// `LABEL=REST` with a non-empty label; the value may itself contain `=`.
fn split_pair(raw: &str) -> Option<(&str, &str)> {
    raw.split_once('=').filter(|(label, _)| !label.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_limits() {
        let blocks = memory_blocks(
            &["human:user=Name: Ada".into(), "notes=a=b".into()],
            &["human=200".into(), "scratch=50".into()],
        )
        .expect("blocks");
        assert_eq!(
            Value::Array(blocks),
            json!([
                {"label": "human", "value": "Name: Ada", "scope": "user", "limit": 200},
                {"label": "notes", "value": "a=b"},
                {"label": "scratch", "value": "", "limit": 50}
            ])
        );
    }

    #[test]
    fn bad_blocks() {
        for (blocks, limits) in [
            (vec!["novalue"], vec![]),
            (vec!["=x"], vec![]),
            (vec!["a=1", "a=2"], vec![]),
            (vec!["a=1", "a:user=2"], vec![]),
            (vec!["a:all=1"], vec![]),
            (vec![], vec!["a=ten"]),
            (vec![], vec!["a"]),
            (vec![], vec!["a=1", "a=2"]),
        ] {
            let blocks: Vec<String> = blocks.into_iter().map(String::from).collect();
            let limits: Vec<String> = limits.into_iter().map(String::from).collect();
            assert!(
                memory_blocks(&blocks, &limits).is_err(),
                "{blocks:?} {limits:?}"
            );
        }
    }
}
