//! The `roster` binary: `serve` runs the server; the other subcommands are a
//! CLI that speaks HTTP to a server; `bench` measures the runtime in-process.
//! Only this crate uses `anyhow`, reads the environment or parses flags.

mod bench;
mod bench_memory;
mod builtin_model;
mod client;
mod config;
mod serve;
mod walls;

use clap::{Parser, Subcommand};

// glibc's allocator serialises the runtime's many small allocations across
// threads on arena locks (measured with `perf` under `roster bench`);
// mimalloc's per-thread heaps do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "A stateful runtime for fleets of AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded SQLite store unless --database-url is given).
    Serve(serve::ServeArgs),
    /// Create, list, show, update and delete agents.
    Agent(Box<client::AgentArgs>),
    /// An agent's pinned memory blocks: list, show, set, add, remove.
    Block(client::BlockArgs),
    /// Chat with an agent interactively, streaming its replies.
    Chat(client::ChatArgs),
    /// Inspect sessions and their conversations.
    Session(client::SessionArgs),
    /// Inspect and cancel runs, and read the tree of runs one started.
    Run(client::RunArgs),
    /// Wake agents at set times: add (cron in a time zone, or --at), list,
    /// show, pause, resume, remove.
    Schedule(client::ScheduleArgs),
    /// Signed webhooks that start runs: add (prints the URL and secret),
    /// list, show, remove.
    Trigger(client::TriggerArgs),
    /// URLs told when runs finish (signed, retried): add (prints the id and
    /// secret), list, show, remove, notifications, resend.
    Webhook(client::WebhookArgs),
    /// Limits on runs executing at once: show (running and waiting per
    /// agent), set a tenant's (admin key).
    Limits(client::LimitsArgs),
    /// Inspect and correct what agents remember long-term.
    Memory(client::MemoryArgs),
    /// Company documents for agents: add (file or directory), list, search, remove.
    Knowledge(client::KnowledgeArgs),
    /// The search index: status, rebuild from the store.
    Index(client::IndexArgs),
    /// MCP servers agents may use: add (stdio command or --url), list, show, remove, tools.
    Mcp(client::McpArgs),
    /// Company data sources agents may query: add-sql, list, show, schema, query, remove.
    Source(client::SourceArgs),
    /// Remote A2A agents your agents may call (`a2a:NAME`): add (by card URL), list, show, remove, refresh.
    Remote(client::RemoteArgs),
    /// Tenants (admin key only): create, list.
    Tenant(client::TenantArgs),
    /// API keys of users and service accounts: create, list, show, revoke.
    Key(client::KeyArgs),
    /// The tenant's Cedar policies: put, list, show, remove, schema.
    Policy(client::PolicyArgs),
    /// The tenant's audit log: list, export as JSON Lines.
    Audit(client::AuditArgs),
    /// Tool calls waiting for a human: list, show, approve, deny.
    Approvals(client::ApprovalArgs),
    /// Daily token and cost budgets of the tenant and its agents.
    Budget(client::BudgetArgs),
    /// Model calls summed by day, agent, provider, model.
    Ledger(client::LedgerArgs),
    /// The providers and models the server offers, and its default model.
    Models(client::ModelsArgs),
    /// Measure the runtime's own per-turn cost with an instant in-process model.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_on_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Agent(cmd) => client::agent(*cmd).await,
            Command::Block(cmd) => client::block(cmd).await,
            Command::Chat(args) => client::chat(args).await,
            Command::Session(cmd) => client::session(cmd).await,
            Command::Run(cmd) => client::run(cmd).await,
            Command::Schedule(cmd) => client::schedule(cmd).await,
            Command::Trigger(cmd) => client::trigger(cmd).await,
            Command::Webhook(cmd) => client::webhook(cmd).await,
            Command::Limits(cmd) => client::limits(cmd).await,
            Command::Memory(cmd) => client::memory(cmd).await,
            Command::Knowledge(cmd) => client::knowledge(cmd).await,
            Command::Index(cmd) => client::index(cmd).await,
            Command::Mcp(cmd) => client::mcp(cmd).await,
            Command::Source(cmd) => client::source(cmd).await,
            Command::Remote(cmd) => client::remote(cmd).await,
            Command::Tenant(cmd) => client::tenant(cmd).await,
            Command::Key(cmd) => client::key(cmd).await,
            Command::Policy(cmd) => client::policy(cmd).await,
            Command::Audit(cmd) => client::audit(cmd).await,
            Command::Approvals(cmd) => client::approvals(cmd).await,
            Command::Budget(cmd) => client::budget(cmd).await,
            Command::Ledger(cmd) => client::ledger(cmd).await,
            Command::Models(args) => client::models(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`roster audit export | head`):
        // its choice, not a failure.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as usual; a usage error becomes one line, like
/// every other failure.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    }
    let rendered = e.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    // clap may already say where to look; say it once.
    let message = message
        .trim_end_matches("For more information, try '--help'.")
        .trim_end();
    eprintln!("error: {message} (see --help)");
    ExitCode::from(2)
}

/// The error and its causes on one line: a cause that repeats the one
/// before it is left out, and multi-line texts (a TOML error with its
/// excerpt) are joined.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.chars().all(|c| "|^-= ".contains(c)))
            .collect::<Vec<_>>()
            .join(" ");
        if parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Whether `e` comes from writing to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `roster … | head` closes the pipe after what it wanted; the next print
/// then fails, and `println!` panics. That is the reader's choice, not an
/// error of ours: stop quietly (and successfully) instead of printing a
/// panic. Any other panic keeps the default report.
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
}
