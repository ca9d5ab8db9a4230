//! Runs asked for in items (the Responses API's shape): the checks a turn
//! passes before it is queued, and the conversations it may run in.

use crate::error::RuntimeError;
use crate::scheduler::Runtime;
use roster_core::actor::Actor;
use roster_core::agent::Agent;
use roster_core::item::ItemContent;
use roster_core::turn::Turn;
use roster_core::SessionId;
use roster_store::conversations::PendingConversation;
use roster_store::{AgentRef, Session, StoreError};

/// What the model will read of `items`, to size them like one input.
pub fn turn_text(items: &[ItemContent]) -> String {
    let mut text = String::new();
    for item in items {
        let part = match item {
            ItemContent::UserMessage { text } | ItemContent::SystemNote { text } => text.clone(),
            ItemContent::AssistantMessage { text, tool_calls } => {
                let mut all = text.clone();
                for call in tool_calls {
                    all.push_str(&call.name);
                    all.push_str(&call.arguments);
                }
                all
            }
            ItemContent::ToolResult { output, .. } => output.clone(),
            ItemContent::Opaque { .. } => continue,
        };
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&part);
    }
    text
}

/// A conversation as a surface sees it: a session, or one no response
/// has used yet.
#[derive(Clone, Debug)]
pub enum Conversation {
    Session(Session),
    Pending(PendingConversation),
}

impl Conversation {
    pub fn id(&self) -> &SessionId {
        match self {
            Conversation::Session(s) => &s.id,
            Conversation::Pending(p) => &p.id,
        }
    }

    pub fn metadata(&self) -> Option<&serde_json::Value> {
        match self {
            Conversation::Session(s) => s.metadata.as_ref(),
            Conversation::Pending(p) => p.metadata.as_ref(),
        }
    }

    pub fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Conversation::Session(s) => s.created_at,
            Conversation::Pending(p) => p.created_at,
        }
    }
}

/// The agent behind calls addressed to a model (`provider/model`) rather
/// than an agent: one per tenant, made on first use, with no tools, no
/// memory and no instructions of its own. Its name cannot be an agent a
/// person makes (names start with a letter or digit), and it is an agent
/// like any other for policies (`invoke_agent`, `use_route`), budgets and
/// the ledger.
pub const DIRECT_AGENT: &str = "_direct";

impl Runtime {
    /// The tenant's [`DIRECT_AGENT`], made now if it does not exist yet.
    pub async fn direct_agent(
        &self,
        tenant: &roster_core::TenantId,
        route: &str,
        made_by: &str,
    ) -> Result<Agent, RuntimeError> {
        let name = AgentRef::Name(DIRECT_AGENT.to_owned());
        if let Some(agent) = self.store().get_agent(tenant, &name).await? {
            return Ok(agent);
        }
        let config: roster_core::agent::AgentConfig = serde_json::from_value(serde_json::json!({
            "instructions": "",
            "model": route,
        }))
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let made = self
            .store()
            .create_agent(
                tenant,
                roster_core::agent::NewAgent {
                    name: DIRECT_AGENT.to_owned(),
                    config,
                    memory_blocks: Vec::new(),
                },
                made_by,
            )
            .await;
        match made {
            Ok(agent) => Ok(agent),
            // Made by another request meanwhile.
            Err(StoreError::Conflict(_)) => self
                .store()
                .get_agent(tenant, &name)
                .await?
                .ok_or(RuntimeError::NotFound("agent")),
            Err(e) => Err(e.into()),
        }
    }

    /// A turn's own checks, and that its client tools do not take the name
    /// of one of the agent's tools (the model could not tell them apart).
    pub async fn check_turn(
        &self,
        tenant: &roster_core::TenantId,
        agent: &Agent,
        turn: &Turn,
    ) -> Result<(), RuntimeError> {
        turn.validate().map_err(RuntimeError::Invalid)?;
        if turn.client_tools.is_empty() {
            return Ok(());
        }
        let tools = self
            .inner
            .services
            .tools
            .resolve(tenant, &agent.config.tools)
            .await;
        if let Some(taken) = turn
            .client_tools
            .iter()
            .find(|t| tools.get(&t.name).is_some())
        {
            return Err(RuntimeError::Invalid(format!(
                "tools: `{}` is the name of one of agent `{}`'s own tools; give the function another name",
                taken.name, agent.name
            )));
        }
        Ok(())
    }

    /// The conversation `id` as `actor` may see it.
    pub async fn conversation(
        &self,
        actor: &Actor,
        id: &SessionId,
    ) -> Result<Conversation, RuntimeError> {
        match self.session_for(actor, id).await {
            Ok(session) => return Ok(Conversation::Session(session)),
            Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.store()
            .pending_conversation(&actor.tenant, id)
            .await?
            .filter(|p| actor.may_reach(p.user.as_deref()))
            .map(Conversation::Pending)
            .ok_or(RuntimeError::NotFound("conversation"))
    }

    /// The session a turn for `agent` runs in when it names conversation
    /// `id`: the conversation's session (which must be the agent's), made
    /// now if no response has used the conversation yet.
    pub async fn conversation_session(
        &self,
        actor: &Actor,
        id: &SessionId,
        agent: &Agent,
    ) -> Result<Session, RuntimeError> {
        let found = self.conversation(actor, id).await?;
        self.conversation_session_of(actor, found, agent).await
    }

    /// [`Runtime::conversation_session`] of a conversation already read
    /// (by [`Runtime::conversation`], for this actor).
    pub async fn conversation_session_of(
        &self,
        actor: &Actor,
        found: Conversation,
        agent: &Agent,
    ) -> Result<Session, RuntimeError> {
        let id = found.id().clone();
        let id = &id;
        let session = match found {
            Conversation::Session(session) => session,
            Conversation::Pending(_) => {
                match self
                    .store()
                    .start_conversation(&actor.tenant, id, &agent.id)
                    .await
                {
                    Ok(Some(session)) => session,
                    // Another response made it meanwhile.
                    Ok(None) | Err(StoreError::Conflict(_)) => self.session_for(actor, id).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if session.agent_id != agent.id {
            let owner = self
                .store()
                .get_agent(&actor.tenant, &AgentRef::Id(session.agent_id.clone()))
                .await?
                .map_or_else(
                    || "a deleted agent".to_owned(),
                    |a| format!("agent `{}`", a.name),
                );
            return Err(RuntimeError::Invalid(format!(
                "conversation `{id}` is with {owner}, not `{}`; name that agent as the model",
                agent.name
            )));
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::item::ToolCall;

    #[test]
    fn turn_text_counts_what_the_model_reads() {
        let text = turn_text(&[
            ItemContent::UserMessage { text: "hi".into() },
            ItemContent::AssistantMessage {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                }],
            },
            ItemContent::Opaque {
                item: serde_json::json!({"type": "reasoning"}),
            },
            ItemContent::ToolResult {
                call_id: "c".into(),
                name: "f".into(),
                output: "42".into(),
                is_error: false,
            },
        ]);
        assert_eq!(text, "hi\n\nf{}\n\n42");
    }
}
