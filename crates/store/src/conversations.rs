//! Conversations (the OpenAI Conversations API): a conversation *is* a
//! session. One made before any response names its agent waits, with its
//! items, until the first response in it makes the session (same id).

use crate::{Session, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::item::{Item, ItemContent};
use roster_core::{AgentId, SessionId, TenantId};

/// A conversation that no response has used yet: it has no agent.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingConversation {
    pub id: SessionId,
    pub user: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub items: Vec<Item>,
    pub created_at: DateTime<Utc>,
}

/// A page of a conversation's items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemPage {
    /// Items after (in `descending` order: before) this `seq`.
    pub after: Option<i64>,
    pub limit: i64,
    pub descending: bool,
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Stores a conversation without an agent, with its first items.
    async fn create_conversation(
        &self,
        tenant: &TenantId,
        user: Option<&str>,
        metadata: Option<serde_json::Value>,
        items: Vec<ItemContent>,
        created_by: &str,
    ) -> StoreResult<PendingConversation>;
    async fn pending_conversation(
        &self,
        tenant: &TenantId,
        id: &SessionId,
    ) -> StoreResult<Option<PendingConversation>>;
    /// Makes the session of a pending conversation, for `agent` at its
    /// current version, with the conversation's id, metadata and items;
    /// `None` when no such pending conversation exists (any more).
    async fn start_conversation(
        &self,
        tenant: &TenantId,
        id: &SessionId,
        agent: &AgentId,
    ) -> StoreResult<Option<Session>>;
    /// Replaces the metadata of a session or a pending conversation;
    /// false when neither exists.
    async fn set_conversation_metadata(
        &self,
        tenant: &TenantId,
        id: &SessionId,
        metadata: Option<serde_json::Value>,
    ) -> StoreResult<bool>;
    async fn delete_pending_conversation(
        &self,
        tenant: &TenantId,
        id: &SessionId,
    ) -> StoreResult<bool>;
    /// Appends items outside any run to a session or a pending
    /// conversation (`SessionBusy` while the session has a run in
    /// progress: they would land between a call and its result).
    async fn append_conversation_items(
        &self,
        tenant: &TenantId,
        id: &SessionId,
        items: Vec<ItemContent>,
    ) -> StoreResult<Vec<Item>>;
    /// A session's items not removed, in `seq` order or its reverse.
    async fn page_conversation_items(
        &self,
        tenant: &TenantId,
        id: &SessionId,
        page: ItemPage,
    ) -> StoreResult<Vec<Item>>;
    /// Takes an item out of the history the model sees and the lists
    /// (it stays stored); false when there is no such item.
    async fn remove_conversation_item(
        &self,
        tenant: &TenantId,
        id: &SessionId,
        seq: i64,
    ) -> StoreResult<bool>;
    /// Runs in sessions of `agent` (and of `session`, when given) that the
    /// users in `visible` may see (`None`: all), newest first, before
    /// `before` — a protocol's task list.
    async fn list_agent_runs(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        session: Option<&SessionId>,
        visible: Option<Vec<String>>,
        before: Option<&roster_core::RunId>,
        limit: i64,
    ) -> StoreResult<Vec<roster_core::run::Run>>;
    /// Replaces what a surface stored with run `run` (its echo of the
    /// request; a deleted response's mark); false when there is no run.
    async fn set_run_surface(
        &self,
        tenant: &TenantId,
        run: &roster_core::RunId,
        surface: serde_json::Value,
    ) -> StoreResult<bool>;
}
