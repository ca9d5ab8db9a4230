//! Memory blocks beyond a run's journal: the rows of users' and sessions'
//! copies, each copy's own history, a person's edit of a block (stored with
//! its audit event), and adding or removing blocks, which stores a new
//! agent version. Rows are never deleted when a block leaves a version:
//! sessions still on an older version, and a later version that lists the
//! label again, find its value and history.

use crate::{BlockWrite, NewAuditEvent, StoreError, StoreResult};
use async_trait::async_trait;
use roster_core::agent::{Agent, AgentConfig, NewAgent, MAX_BLOCKS};
use roster_core::blocks::BlockOwner;
use roster_core::memory::{MemoryBlock, MemoryBlockSpec, MemoryBlockVersion};
use roster_core::{AgentId, TenantId};
use serde_json::json;

/// Blocks to add to and remove from an agent's current version.
#[derive(Clone, Debug, Default)]
pub struct BlockChange {
    /// The new version's configuration apart from its blocks; the current
    /// version's when `None`. Its own `memory_blocks` are ignored: the
    /// change applies to the blocks of the version current when it lands.
    pub config: Option<AgentConfig>,
    /// Removed first, so a label may be removed and added back in one change.
    pub remove: Vec<String>,
    /// Each added block's value (the template of a `user` or `session`
    /// block) is set on the agent's row, a new version of it if the label
    /// was there before.
    pub add: Vec<MemoryBlockSpec>,
}

impl BlockChange {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
}

#[async_trait]
pub trait BlockStore: Send + Sync {
    /// The agent's block rows of these owners (its own, and copies), by
    /// label. Cost depends on the owners named, never on how many users or
    /// sessions have copies.
    async fn memory_blocks_of(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        owners: &[BlockOwner],
    ) -> StoreResult<Vec<MemoryBlock>>;
    /// One row's history, oldest first.
    async fn block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        owner: &BlockOwner,
        label: &str,
    ) -> StoreResult<Vec<MemoryBlockVersion>>;
    /// A person's edit of one row, with its audit event in the same
    /// transaction. `Conflict` when the row is no longer at
    /// `expected_version` (0: a copy not yet made).
    async fn set_memory_block(
        &self,
        tenant: &TenantId,
        write: BlockWrite,
        audit: NewAuditEvent,
    ) -> StoreResult<MemoryBlock>;
    /// Stores a new version of the agent with `change` applied, writes the
    /// added blocks' values, and audits it (`agent.update`, and one
    /// `block.add` / `block.remove` per block, actor `principal`), all in
    /// one transaction. `NotFound` for a missing agent or a removed label
    /// the version does not have; `Conflict` for an added label it has.
    async fn change_agent_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        change: BlockChange,
        principal: &str,
    ) -> StoreResult<Agent>;
}

/// The configuration a block change stores, from the current version's.
pub fn changed_config(
    current: &AgentConfig,
    change: &BlockChange,
) -> Result<AgentConfig, StoreError> {
    let mut config = change.config.clone().unwrap_or_else(|| current.clone());
    config.memory_blocks = current.memory_blocks.clone();
    for label in &change.remove {
        let before = config.memory_blocks.len();
        config.memory_blocks.retain(|d| d.label != *label);
        if config.memory_blocks.len() == before {
            return Err(StoreError::NotFound(format!("memory block `{label}`")));
        }
    }
    for spec in &change.add {
        if config.block(&spec.label).is_some() {
            return Err(StoreError::Conflict(format!(
                "the agent already has a memory block `{}`",
                spec.label
            )));
        }
        config.memory_blocks.push(spec.def());
    }
    if config.memory_blocks.len() > MAX_BLOCKS {
        return Err(StoreError::Conflict(format!(
            "at most {MAX_BLOCKS} memory blocks per agent"
        )));
    }
    Ok(config)
}

/// The audit events of a block change that stored `agent`'s new version.
pub fn change_events(principal: &str, agent: &Agent, change: &BlockChange) -> Vec<NewAuditEvent> {
    let event = |action: &str, label: &str, detail| NewAuditEvent {
        actor: principal.to_owned(),
        action: action.to_owned(),
        resource: format!("agent:{}/block:{label}", agent.name),
        decision: None,
        detail,
    };
    let mut events = vec![crate::agent_event("agent.update", principal, agent)];
    events.extend(change.remove.iter().map(|label| {
        event(
            "block.remove",
            label,
            json!({ "agent": agent.id, "version": agent.version }),
        )
    }));
    events.extend(change.add.iter().map(|spec| {
        event(
            "block.add",
            &spec.label,
            json!({
                "agent": agent.id, "version": agent.version, "scope": spec.scope,
                "limit": spec.limit(), "chars": spec.value.chars().count(),
            }),
        )
    }));
    events
}

/// A new agent's first configuration: its blocks are the ones created
/// with it, each label once.
pub fn created_config(agent: &NewAgent) -> Result<AgentConfig, StoreError> {
    let specs = &agent.memory_blocks;
    for (i, spec) in specs.iter().enumerate() {
        if specs[..i].iter().any(|s| s.label == spec.label) {
            return Err(StoreError::Conflict(format!(
                "memory block `{}` is listed twice",
                spec.label
            )));
        }
    }
    let mut config = agent.config.clone();
    config.memory_blocks = specs.iter().map(MemoryBlockSpec::def).collect();
    Ok(config)
}

/// An owner as stored.
pub fn owner_of(raw: &str) -> Result<BlockOwner, StoreError> {
    BlockOwner::parse(raw).map_err(|e| StoreError::Corrupt(format!("block owner: {}", e.message)))
}

/// The error for a write whose row moved on since it was read, or a copy
/// that was made meanwhile (or whose agent is not the tenant's).
pub fn stale_block(write: &BlockWrite) -> StoreError {
    if write.expected_version == 0 {
        StoreError::Conflict(format!(
            "memory block `{}` of {} was created meanwhile",
            write.label, write.owner
        ))
    } else {
        StoreError::Conflict(format!(
            "memory block `{}` changed since it was read (expected version {})",
            write.label, write.expected_version
        ))
    }
}
