//! The CLI's client commands (being written).

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum AgentCommand {
    List,
}
#[derive(clap::Args)]
pub struct ChatArgs {
    pub agent: String,
}
#[derive(clap::Subcommand)]
pub enum SessionCommand {
    List,
}
#[derive(clap::Subcommand)]
pub enum RunCommand {
    Show { id: String },
}

pub async fn agent(_cmd: AgentCommand) -> Result<()> {
    anyhow::bail!("not yet")
}
pub async fn chat(_args: ChatArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
pub async fn session(_cmd: SessionCommand) -> Result<()> {
    anyhow::bail!("not yet")
}
pub async fn run(_cmd: RunCommand) -> Result<()> {
    anyhow::bail!("not yet")
}
