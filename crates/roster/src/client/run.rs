//! `roster run show|tree|cancel|retry`.

use super::api_client::{decode, Client};
use super::output::{hang, one_line, print_json, table, time};
use super::Connection;
use anyhow::Result;
use roster_core::run::{Run, RunWait, Step, StepKind, StepStatus};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: RunCommand,
}

#[derive(clap::Subcommand)]
enum RunCommand {
    /// Show a run: status, output or error, and its steps.
    Show {
        /// Run id.
        id: String,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a run and every run it started (agents it asked, tasks it
    /// handed off), with statuses, actor chains and model usage.
    Tree {
        /// Run id.
        id: String,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running run (also while it waits for a provider),
    /// and the runs it started.
    Cancel {
        /// Run id.
        id: String,
    },
    /// Retry a failed run: it continues from its journal (completed model
    /// and tool calls are not made again), after the runs already queued in
    /// its session.
    Retry {
        /// Run id.
        id: String,
    },
}

#[derive(Deserialize)]
struct RunDetail {
    #[serde(flatten)]
    run: Run,
    steps: Vec<Step>,
    #[serde(default)]
    children: Vec<ChildRun>,
}

#[derive(Deserialize)]
struct ChildRun {
    id: String,
    status: String,
    agent: String,
    mode: String,
}

#[derive(Deserialize)]
struct RunTree {
    root: RunNode,
    runs: usize,
    total: Usage,
    truncated: bool,
}

#[derive(Deserialize)]
struct RunNode {
    id: String,
    status: String,
    agent: String,
    mode: String,
    actor: Option<String>,
    usage: Usage,
    children: Vec<RunNode>,
}

#[derive(Deserialize)]
struct Usage {
    model_calls: i64,
    tokens_in: i64,
    tokens_out: i64,
    cost_micros: i64,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        RunCommand::Show { id, json } => {
            let value = client.get(&["v1", "runs", &id], &[]).await?;
            if json {
                return print_json(&value);
            }
            let detail: RunDetail = decode(value)?;
            print!("{}", render(&detail));
            Ok(())
        }
        RunCommand::Tree { id, json } => {
            let value = client.get(&["v1", "runs", &id, "tree"], &[]).await?;
            if json {
                return print_json(&value);
            }
            let tree: RunTree = decode(value)?;
            print!("{}", render_tree(&tree));
            Ok(())
        }
        RunCommand::Cancel { id } => {
            let run: Run = decode(
                client
                    .post(&["v1", "runs", &id, "cancel"], &json!({}))
                    .await?,
            )?;
            println!("run {}: {}", run.id, run.status.as_str());
            Ok(())
        }
        RunCommand::Retry { id } => {
            let run: Run = decode(
                client
                    .post(&["v1", "runs", &id, "retry"], &json!({}))
                    .await?,
            )?;
            println!(
                "run {}: {} (continues from its journal; follow it with `roster run show {}`)",
                run.id,
                run.status.as_str(),
                run.id
            );
            Ok(())
        }
    }
}

/// One line per run, indented under the run that started it, then the sums.
fn render_tree(tree: &RunTree) -> String {
    let mut out = String::new();
    let mut stack = vec![(&tree.root, 0usize)];
    while let Some((node, indent)) = stack.pop() {
        out.push_str(&format!(
            "{:indent$}{} {} [{}] {} — {}\n{:indent$}    by {}\n",
            "",
            node.id,
            node.agent,
            node.mode,
            node.status,
            usage(&node.usage),
            "",
            node.actor.as_deref().unwrap_or("unknown"),
            indent = indent
        ));
        for child in node.children.iter().rev() {
            stack.push((child, indent + 2));
        }
    }
    out.push_str(&format!(
        "\n{} run(s){}; total {}\n",
        tree.runs,
        if tree.truncated {
            " (cut at 1,000)"
        } else {
            ""
        },
        usage(&tree.total)
    ));
    out
}

fn usage(u: &Usage) -> String {
    format!(
        "{} model call(s), {} tokens in, {} out, ${:.6}",
        u.model_calls,
        u.tokens_in,
        u.tokens_out,
        u.cost_micros as f64 / 1e6
    )
}

fn render(detail: &RunDetail) -> String {
    const INDENT: usize = 10;
    let run = &detail.run;
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        out.push_str(&format!("{label:<9} {}\n", hang(value, INDENT)));
    };
    line("run", run.id.as_str());
    line("session", run.session_id.as_str());
    line("status", run.status.as_str());
    line("version", &format!("agent version {}", run.agent_version));
    if let Some(actor) = &run.actor {
        line("actor", actor);
    }
    if let Some(parent) = &run.parent_run_id {
        line("parent", parent.as_str());
    }
    for child in &detail.children {
        line(
            "child",
            &format!(
                "{} {} [{}] {}",
                child.id, child.agent, child.mode, child.status
            ),
        );
    }
    line("input", &run.input);
    if let Some(output) = &run.output {
        line("output", output);
    }
    if let Some(error) = &run.error {
        line("error", &format!("{}: {}", error.code, error.message));
    }
    if let Some(wait) = &run.waiting {
        line("waiting", &waiting(wait));
    }
    line("created", &format!("{} UTC", time(&run.created_at)));
    if let Some(t) = &run.started_at {
        line("started", &format!("{} UTC", time(t)));
    }
    if let Some(t) = &run.finished_at {
        let took = t.signed_duration_since(run.created_at).num_milliseconds();
        line(
            "finished",
            &format!(
                "{} UTC ({:.1}s after creation)",
                time(t),
                took as f64 / 1000.0
            ),
        );
    }
    if detail.steps.is_empty() {
        out.push_str("steps     none\n");
        return out;
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = detail
        .steps
        .iter()
        .map(|s| {
            vec![
                s.n.to_string(),
                s.kind.as_str().to_owned(),
                match s.status {
                    StepStatus::Started => "started".to_owned(),
                    StepStatus::Completed => "completed".to_owned(),
                },
                step_detail(s),
            ]
        })
        .collect();
    out.push_str(&table(&["N", "KIND", "STATUS", "DETAIL"], &rows));
    out
}

/// What a waiting run waits for, when it tries next and when it gives up.
fn waiting(wait: &RunWait) -> String {
    format!(
        "waiting for {} since {} UTC, next attempt at {} UTC (gives up at {} UTC); {} failed attempts, last: {}: {}",
        wait.waiting_for,
        time(&wait.since),
        time(&wait.next_attempt_at),
        time(&wait.gives_up_at),
        wait.attempts,
        wait.last_error.code,
        one_line(&wait.last_error.message, 160)
    )
}

/// The route of a model call; the tool and its arguments for a tool call.
fn step_detail(step: &Step) -> String {
    match step.kind {
        StepKind::ModelCall => step
            .input
            .get("route")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        StepKind::Summary => format!(
            "folded history through #{} ({})",
            step.input
                .get("through_seq")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            step.input
                .get("route")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
        StepKind::ToolCall => {
            let call = step.input.get("call");
            let name = call
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let arguments = call
                .and_then(|c| c.get("arguments"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            one_line(&format!("{name} {arguments}"), 80)
        }
    }
}
