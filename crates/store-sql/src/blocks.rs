//! Memory block rows: copies, per-row history, versioned writes (a run's
//! tool edit or a person's), and block changes that store a new agent
//! version. See [`crate::blocks`].

use super::rows::{self, BLOCK_COLUMNS, BLOCK_VERSION_COLUMNS};
use super::Conn;
use chrono::Utc;
use roster_core::agent::Agent;
use roster_core::blocks::BlockOwner;
use roster_core::memory::{MemoryBlock, MemoryBlockSpec, MemoryBlockVersion};
use roster_core::{AgentId, TenantId};
use roster_store::blocks::{change_events, changed_config, stale_block};
use roster_store::millis;
use roster_store::{BlockChange, BlockWrite, NewAuditEvent, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// The `agent_id` a row of `owner` is stored under: the agent's, or for
/// the tenant's shared blocks the tenant's id (unique per tenant, and no
/// agent id looks like it), so every agent that attaches one reads and
/// writes the same row.
fn row_agent<'a>(tenant: &'a TenantId, agent: &'a AgentId, owner: &BlockOwner) -> &'a str {
    if *owner == BlockOwner::Shared {
        tenant.as_str()
    } else {
        agent.as_str()
    }
}

/// The rows of `owners`, by label and owner (`shared`: the tenant's).
pub(crate) async fn blocks_of(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    owners: &[BlockOwner],
) -> Result<Vec<MemoryBlock>> {
    let shared = owners.contains(&BlockOwner::Shared);
    let owners: Vec<String> = owners
        .iter()
        .filter(|o| **o != BlockOwner::Shared)
        .map(ToString::to_string)
        .collect();
    Ok(c.all(
        crate::sql!(
            "SELECT {BLOCK_COLUMNS} FROM memory_blocks
             WHERE tenant_id = $1 AND ((agent_id = $2 AND owner = ANY($3)) OR ($4 AND agent_id = $1 AND owner = 'shared'))
             ORDER BY label, owner"
        ),
        crate::args![tenant, agent, &owners, shared],
        rows::block,
    )
    .await?)
}

pub(crate) async fn history(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    owner: &BlockOwner,
    label: &str,
) -> Result<Vec<MemoryBlockVersion>> {
    let row_agent = row_agent(tenant, agent, owner);
    let owner = owner.to_string();
    Ok(c.all(
        crate::sql!(
            "SELECT {BLOCK_VERSION_COLUMNS} FROM memory_block_versions
             WHERE tenant_id = $1 AND agent_id = $2 AND owner = $3 AND label = $4 ORDER BY version"
        ),
        crate::args![tenant, row_agent, &owner, label],
        rows::block_version,
    )
    .await?)
}

/// Applies a versioned write: updates the row if it is still at the
/// expected version, or makes the copy (version 0); appends the version.
pub(crate) async fn write_block(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    block: &BlockWrite,
    run: Option<&str>,
    now: i64,
) -> Result<()> {
    let agent = row_agent(tenant, &block.agent_id, &block.owner);
    let owner = block.owner.to_string();
    let changed = if block.expected_version == 0 {
        c.exec(
            crate::sql!(
                "INSERT INTO memory_blocks (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
                 SELECT $1, $2, $3, $4, $5, $6, 1, $7
                 WHERE $2 = 'shared' OR EXISTS (SELECT 1 FROM agents WHERE id = $1 AND tenant_id = $4)
                 ON CONFLICT DO NOTHING"
            ),
            crate::args![agent, &owner, &block.label, tenant, &block.value, block.limit, now],
        )
        .await?
    } else {
        c.exec(
            crate::sql!(
                "UPDATE memory_blocks SET value = $5, char_limit = $6, version = version + 1, updated_at = $7
                 WHERE tenant_id = $1 AND agent_id = $2 AND owner = $3 AND label = $4 AND version = $8"
            ),
            crate::args![
                tenant,
                agent,
                &owner,
                &block.label,
                &block.value,
                block.limit,
                now,
                block.expected_version
            ],
        )
        .await?
    };
    if changed == 0 {
        return Err(stale_block(block));
    }
    c.exec(
        crate::sql!(
            "INSERT INTO memory_block_versions (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        crate::args![
            agent,
            &owner,
            &block.label,
            block.expected_version + 1,
            tenant,
            &block.value,
            &block.operation,
            run,
            &block.principal,
            now
        ],
    )
    .await?;
    Ok(())
}

/// Sets the agent's own row of a block being added (`operation` `create`
/// or `add`): a new row, or a new version of one a past version had.
pub(crate) async fn put_agent_block(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    spec: &MemoryBlockSpec,
    operation: &str,
    principal: &str,
    now: i64,
) -> Result<()> {
    if spec.scope == roster_core::blocks::BlockScope::Shared {
        return attach_shared(c, tenant, spec, principal, now).await;
    }
    let version: i64 = c
        .one(
            crate::sql!(
                "INSERT INTO memory_blocks (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
                 VALUES ($1, 'agent', $2, $3, $4, $5, 1, $6)
                 ON CONFLICT (agent_id, owner, label) DO UPDATE SET value = EXCLUDED.value,
                     char_limit = EXCLUDED.char_limit, version = memory_blocks.version + 1, updated_at = EXCLUDED.updated_at
                 RETURNING version"
            ),
            crate::args![agent, &spec.label, tenant, &spec.value, spec.limit(), now],
            |row| row.get(0),
        )
        .await?;
    c.exec(
        crate::sql!(
            "INSERT INTO memory_block_versions (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
             VALUES ($1, 'agent', $2, $3, $4, $5, $6, NULL, $7, $8)"
        ),
        crate::args![agent, &spec.label, version, tenant, &spec.value, operation, principal, now],
    )
    .await?;
    Ok(())
}

/// A `shared` block listed by an agent: the tenant's block of that label,
/// made from this spec if it is the first agent to list it (a later
/// agent's value and limit are not used: the block is already someone's
/// memory).
async fn attach_shared(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    spec: &MemoryBlockSpec,
    principal: &str,
    now: i64,
) -> Result<()> {
    let made = c
        .exec(
            crate::sql!(
                "INSERT INTO memory_blocks (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
                 VALUES ($1, 'shared', $2, $1, $3, $4, 1, $5) ON CONFLICT DO NOTHING"
            ),
            crate::args![tenant, &spec.label, &spec.value, spec.limit(), now],
        )
        .await?;
    if made == 1 {
        c.exec(
            crate::sql!(
                "INSERT INTO memory_block_versions (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
                 VALUES ($1, 'shared', $2, 1, $1, $3, 'create', NULL, $4, $5)"
            ),
            crate::args![tenant, &spec.label, &spec.value, principal, now],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn set_memory_block(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    write: &BlockWrite,
    audit: &NewAuditEvent,
) -> Result<MemoryBlock> {
    write_block(c, tenant, write, None, millis(Utc::now())).await?;
    super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    blocks_of(
        c,
        tenant,
        &write.agent_id,
        std::slice::from_ref(&write.owner),
    )
    .await?
    .into_iter()
    .find(|b| b.label == write.label)
    .ok_or_else(|| StoreError::NotFound(format!("memory block `{}`", write.label)))
}

/// The agent row is locked (on PostgreSQL) first, so concurrent changes
/// apply one after the other to the current version.
pub(crate) async fn change_blocks(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    change: &BlockChange,
    principal: &str,
) -> Result<Agent> {
    if c.is_postgres() {
        c.exec(
            crate::sql!("SELECT 1 FROM agents WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
            crate::args![tenant, agent],
        )
        .await?;
    }
    let current = super::agents::get_agent(c, tenant, &crate::AgentRef::Id(agent.clone()))
        .await?
        .ok_or_else(|| StoreError::NotFound("agent".into()))?;
    let config = changed_config(&current.config, change)?;
    let updated = super::agents::update_agent(c, tenant, agent, &config).await?;
    let now = millis(Utc::now());
    for spec in &change.add {
        put_agent_block(c, tenant, agent, spec, "add", principal, now).await?;
    }
    super::audit::append(c, tenant, &change_events(principal, &updated, change)).await?;
    Ok(updated)
}

crate::store_impl! {
    impl crate::BlockStore {
        read memory_blocks_of(tenant: &TenantId, agent: &AgentId, owners: &[BlockOwner]) -> Vec<MemoryBlock> = |c| blocks_of(c, &tenant, &agent, &owners).await;
        read block_history(tenant: &TenantId, agent: &AgentId, owner: &BlockOwner, label: &str) -> Vec<MemoryBlockVersion> = |c| history(c, &tenant, &agent, &owner, &label).await;
        write set_memory_block(tenant: &TenantId, write: BlockWrite, audit: NewAuditEvent) -> MemoryBlock = |c| set_memory_block(c, &tenant, &write, &audit).await;
        write change_agent_blocks(tenant: &TenantId, agent: &AgentId, change: BlockChange, principal: &str) -> Agent = |c| change_blocks(c, &tenant, &agent, &change, &principal).await;
    }
}
