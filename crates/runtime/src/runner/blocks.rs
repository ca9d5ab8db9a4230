//! The memory blocks a run pins and edits: for each block of the session's
//! agent version, the agent's value, or the copy of the session's user or
//! of the session itself (see `roster_core::blocks`). A run never reads or
//! writes another user's or session's copy.

use super::RunState;
use roster_core::agent::Agent;
use roster_core::blocks::{effective_block, pinned_blocks, BlockOwner, BlockScope};
use roster_core::memory::MemoryBlock;
use roster_core::TenantId;
use roster_store::{DynStore, Session, StoreError};

impl RunState<'_> {
    fn block_owner(&self, scope: BlockScope) -> BlockOwner {
        BlockOwner::for_session(scope, self.session.user.as_deref(), &self.session.id)
    }

    /// Whose row this session's edit of block `label` writes.
    pub(super) fn edited_owner(&self, label: &str) -> BlockOwner {
        self.agent
            .config
            .block(label)
            .map_or(BlockOwner::Agent, |def| self.block_owner(def.scope))
    }

    /// The blocks pinned into this run's context. Read every time: runs in
    /// other sessions may have edited the agent's or this user's blocks
    /// since this run's last model call.
    pub(super) async fn pinned_blocks(&self) -> Result<Vec<MemoryBlock>, StoreError> {
        session_blocks(
            &self.services.store,
            self.tenant,
            &self.agent,
            &self.session,
        )
        .await
    }

    /// The value this session edits of block `label` (version 0: a copy not
    /// made yet, holding the template), or `None` when the session's agent
    /// version has no such block.
    pub(super) async fn session_block(
        &self,
        label: &str,
    ) -> Result<Option<MemoryBlock>, StoreError> {
        if self.agent.config.block(label).is_none() {
            return Ok(None);
        }
        let owner = self.edited_owner(label);
        let mut owners = vec![BlockOwner::Agent];
        if !owner.is_agent() {
            owners.push(owner.clone());
        }
        let rows = self
            .services
            .store
            .memory_blocks_of(self.tenant, &self.agent.id, &owners)
            .await?;
        Ok(effective_block(&rows, label, &owner))
    }

    /// The labels of this session's blocks, for messages to the model.
    pub(super) fn block_labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = self
            .agent
            .config
            .memory_blocks
            .iter()
            .map(|d| d.label.as_str())
            .collect();
        labels.sort_unstable();
        labels
    }
}

/// The blocks a session of `agent` (this version) pins: the agent's values,
/// and the copies of the session's user and of the session itself.
pub(crate) async fn session_blocks(
    store: &DynStore,
    tenant: &TenantId,
    agent: &Agent,
    session: &Session,
) -> Result<Vec<MemoryBlock>, StoreError> {
    let config = &agent.config;
    if config.memory_blocks.is_empty() {
        return Ok(Vec::new());
    }
    let mut owners = vec![BlockOwner::Agent];
    for def in &config.memory_blocks {
        let owner = BlockOwner::for_session(def.scope, session.user.as_deref(), &session.id);
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    let rows = store.memory_blocks_of(tenant, &agent.id, &owners).await?;
    Ok(pinned_blocks(
        &config.memory_blocks,
        &rows,
        session.user.as_deref(),
        &session.id,
    ))
}
