//! A remote agent as a Roster tool, `ask_remote_NAME`, and the provider
//! that resolves an agent's `a2a:NAME` entry into it. The tool is an
//! ordinary external tool to the runtime: its arguments are checked
//! against its schema, `call_tool` policies see it (kind `a2a`, server
//! NAME), its start and result are journaled, and it is not idempotent, so
//! a call a crash cut off is never sent again.

use crate::card::clip;
use crate::manager::Remotes;
use crate::spec::RemoteConfig;
use crate::{A2aError, KIND};
use async_trait::async_trait;
use roster_core::TenantId;
use roster_tool::{DynTool, ProviderError, Tool, ToolCallContext, ToolOutput, ToolProvider};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Longest tool description a card makes (a model reads it every turn).
const MAX_TOOL_DESCRIPTION: usize = 4_000;

/// What the model gives the tool.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskArguments {
    /// The message to the remote agent. It sees only what you send, not
    /// this conversation, so make it complete.
    pub message: String,
    /// Start a new conversation with the remote agent instead of going on
    /// with the one this session has with it.
    #[serde(default)]
    pub new_conversation: bool,
}

/// The name the model sees for remote `name`.
pub fn tool_name(name: &str) -> String {
    format!("ask_remote_{name}")
}

/// The tool's description: what the card (or the registration) says the
/// agent is and can do, and how the conversation goes on.
fn describe(name: &str, config: &RemoteConfig) -> String {
    let card = &config.card;
    let mut text = format!(
        "Ask the remote agent \"{}\" (A2A, registered as `{name}`) and get its answer.",
        card.name
    );
    let about = config.description.as_deref().unwrap_or(&card.description);
    if !about.is_empty() {
        text.push(' ');
        text.push_str(about);
    }
    if !card.skills.is_empty() {
        text.push_str("\nIts skills:");
        for skill in &card.skills {
            text.push_str(&format!("\n- {}", skill.name));
            if !skill.description.is_empty() {
                text.push_str(&format!(": {}", skill.description));
            }
            if !skill.examples.is_empty() {
                let examples: Vec<String> =
                    skill.examples.iter().map(|e| format!("\"{e}\"")).collect();
                text.push_str(&format!(" (e.g. {})", examples.join("; ")));
            }
        }
    }
    text.push_str(
        "\nIt sees only the messages you send it. Later calls in this session continue the same conversation with it.",
    );
    clip(&text, MAX_TOOL_DESCRIPTION)
}

pub struct RemoteTool {
    remotes: Arc<Remotes>,
    tenant: TenantId,
    remote: String,
    name: String,
    description: String,
    timeout: Duration,
}

#[async_trait]
impl Tool for RemoteTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> serde_json::Value {
        roster_tool::parameters_of::<AskArguments>()
    }

    // A remote acts on each message: never sent again after a crash.
    fn idempotent(&self) -> bool {
        false
    }

    fn policy_kind(&self) -> &str {
        KIND
    }

    fn policy_server(&self) -> &str {
        &self.remote
    }

    fn timeout(&self) -> Duration {
        // The call enforces the registration's timeout; the runner's is a
        // backstop a little later, so the call's clearer message wins.
        self.timeout + Duration::from_secs(2)
    }

    async fn call(&self, ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput {
        debug_assert_eq!(ctx.tenant, self.tenant);
        self.remotes
            .call(&self.tenant, &self.remote, &ctx.session_id, arguments)
            .await
    }
}

/// Resolves `a2a:` entries for the runtime.
pub struct RemoteProvider {
    remotes: Arc<Remotes>,
}

impl RemoteProvider {
    pub fn new(remotes: Arc<Remotes>) -> Arc<Self> {
        Arc::new(Self { remotes })
    }
}

fn parse_entry(entry: &str) -> Result<&str, ProviderError> {
    if entry.contains('/') {
        return Err(ProviderError::Unknown(format!(
            "`a2a:{entry}` names more than a remote agent; write `a2a:NAME` (a remote agent is one tool)"
        )));
    }
    roster_tool::check_integration_name(entry).map_err(ProviderError::Unknown)?;
    Ok(entry)
}

fn provider_error(e: A2aError) -> ProviderError {
    match e {
        A2aError::NotFound(m) | A2aError::Invalid(m) => ProviderError::Unknown(m),
        other => ProviderError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl ToolProvider for RemoteProvider {
    fn scheme(&self) -> &str {
        KIND
    }

    async fn check(&self, tenant: &TenantId, entry: &str) -> Result<(), ProviderError> {
        let name = parse_entry(entry)?;
        self.remotes
            .registration(tenant, name)
            .await
            .map(drop)
            .map_err(provider_error)
    }

    async fn resolve(&self, tenant: &TenantId, entry: &str) -> Result<Vec<DynTool>, ProviderError> {
        let name = parse_entry(entry)?;
        let (_, config) = self
            .remotes
            .registration(tenant, name)
            .await
            .map_err(provider_error)?;
        Ok(vec![Arc::new(RemoteTool {
            remotes: self.remotes.clone(),
            tenant: tenant.clone(),
            remote: name.to_owned(),
            name: tool_name(name),
            description: describe(name, &config),
            timeout: Duration::from_secs(config.timeout_secs),
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{Card, Protocol, Skill};

    fn config() -> RemoteConfig {
        RemoteConfig {
            url: "http://h/".into(),
            card_url: "http://h/.well-known/agent-card.json".into(),
            card: Card {
                name: "Billing Agent".into(),
                description: "Answers billing questions.".into(),
                version: "1".into(),
                endpoint: "http://h/rpc".into(),
                protocol_version: "1.0".into(),
                protocol: Protocol::V1,
                tenant: None,
                skills: vec![Skill {
                    id: "refunds".into(),
                    name: "Refunds".into(),
                    description: "Explains refund status.".into(),
                    tags: vec![],
                    examples: vec!["Where is my refund?".into()],
                }],
            },
            description: None,
            headers: vec![],
            timeout_secs: 120,
        }
    }

    #[test]
    fn the_description_comes_from_the_card_and_its_skills() {
        let text = describe("billing", &config());
        assert!(text.starts_with("Ask the remote agent \"Billing Agent\" (A2A, registered as `billing`) and get its answer. Answers billing questions."), "{text}");
        assert!(
            text.contains("- Refunds: Explains refund status. (e.g. \"Where is my refund?\")"),
            "{text}"
        );
        assert!(text.contains("continue the same conversation"), "{text}");
        let mut own = config();
        own.description = Some("Our billing desk.".into());
        let text = describe("billing", &own);
        assert!(
            text.contains("Our billing desk.") && !text.contains("Answers billing"),
            "{text}"
        );
    }

    #[test]
    fn the_tool_takes_a_message_and_may_start_afresh() {
        let schema = roster_tool::parameters_of::<AskArguments>();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], serde_json::json!(["message"]));
        assert_eq!(schema["properties"]["new_conversation"]["type"], "boolean");
        assert_eq!(schema["additionalProperties"], false);
        assert!(roster_tool::is_valid_tool_name(&tool_name(&"x".repeat(32))));
    }

    #[test]
    fn entries_name_one_remote() {
        assert_eq!(parse_entry("billing").ok(), Some("billing"));
        assert!(parse_entry("billing/refunds").is_err());
        assert!(parse_entry("Bad Name").is_err());
    }
}
