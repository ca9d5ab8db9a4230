//! The `roster` binary: `serve` runs the server; the other subcommands are a
//! CLI that speaks HTTP to a server; `bench` measures the runtime in-process.
//! Only this crate uses `anyhow`, reads the environment or parses flags.

mod bench;
mod client;
mod config;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    #[command(subcommand)]
    Agent(client::AgentCommand),
    /// Chat with an agent interactively, streaming its replies.
    Chat(client::ChatArgs),
    /// Inspect sessions.
    #[command(subcommand)]
    Session(client::SessionCommand),
    /// Inspect runs.
    #[command(subcommand)]
    Run(client::RunCommand),
    /// Measure the runtime's own per-turn cost with an instant in-process model.
    Bench(bench::BenchArgs),
}

/// Where the CLI finds its server and key.
#[derive(clap::Args, Clone, Debug)]
pub struct Connection {
    /// Server URL.
    #[arg(
        long,
        env = "ROSTER_URL",
        default_value = "http://127.0.0.1:7700",
        global = true
    )]
    pub url: String,
    /// API key; defaults to the admin key file in --data-dir.
    #[arg(long, env = "ROSTER_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Data directory whose `admin.key` is used when no key is given.
    #[arg(
        long,
        env = "ROSTER_DATA_DIR",
        default_value = "roster-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Command::Agent(cmd) => client::agent(cmd).await,
            Command::Chat(args) => client::chat(args).await,
            Command::Session(cmd) => client::session(cmd).await,
            Command::Run(cmd) => client::run(cmd).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
