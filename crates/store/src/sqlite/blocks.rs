//! Memory block rows on SQLite: copies, per-row history, versioned writes
//! (a run's tool edit or a person's), and block changes that store a new
//! agent version. See [`crate::blocks`].

use super::{agents, rows, SqliteStore};
use crate::blocks::{change_events, changed_config, owner_of, stale_block};
use crate::types::{from_millis, millis};
use crate::*;
use async_trait::async_trait;
use chrono::Utc;
use roster_core::blocks::BlockOwner;
use roster_core::memory::MemoryBlockSpec;
use rusqlite::{params, Connection, Row};

pub(crate) const BLOCK_COLUMNS: &str = "label, value, char_limit, version, updated_at, owner";

pub(crate) fn block(row: &Row<'_>) -> Result<MemoryBlock, StoreError> {
    let owner: String = row.get(5)?;
    Ok(MemoryBlock {
        label: row.get(0)?,
        owner: owner_of(&owner)?,
        value: row.get(1)?,
        limit: row.get(2)?,
        version: row.get(3)?,
        updated_at: from_millis(row.get(4)?),
    })
}

/// The rows of `owners`, three owners per statement so each is a range of
/// the `(agent_id, owner, label)` key.
pub(crate) fn blocks_of(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    owners: &[BlockOwner],
) -> Result<Vec<MemoryBlock>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BLOCK_COLUMNS} FROM memory_blocks
         WHERE tenant_id = ?1 AND agent_id = ?2 AND owner IN (?3, ?4, ?5)"
    ))?;
    let mut out = Vec::new();
    for chunk in owners.chunks(3) {
        let key = |i: usize| chunk.get(i).unwrap_or(&chunk[0]).to_string();
        out.extend(rows::collect(
            &mut stmt,
            params![tenant.as_str(), agent.as_str(), key(0), key(1), key(2)],
            block,
        )?);
    }
    out.sort_by(|a, b| (&a.label, a.owner.to_string()).cmp(&(&b.label, b.owner.to_string())));
    Ok(out)
}

pub(crate) fn history(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    owner: &BlockOwner,
    label: &str,
) -> Result<Vec<MemoryBlockVersion>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT label, version, value, operation, run_id, principal, created_at FROM memory_block_versions
         WHERE tenant_id = ?1 AND agent_id = ?2 AND owner = ?3 AND label = ?4 ORDER BY version",
    )?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), agent.as_str(), owner.to_string(), label],
        rows::block_version,
    )
}

/// Applies a versioned write: updates the row if it is still at the
/// expected version, or makes the copy (version 0); appends the version.
pub(crate) fn write_block(
    conn: &Connection,
    tenant: &TenantId,
    block: &BlockWrite,
    run: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let owner = block.owner.to_string();
    let changed = if block.expected_version == 0 {
        rows::exec(
            conn,
            "INSERT INTO memory_blocks (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, 1, ?7 WHERE EXISTS (SELECT 1 FROM agents WHERE id = ?1 AND tenant_id = ?4)
             ON CONFLICT DO NOTHING",
            params![block.agent_id.as_str(), owner, block.label, tenant.as_str(), block.value, block.limit, now],
        )?
    } else {
        rows::exec(
            conn,
            "UPDATE memory_blocks SET value = ?5, char_limit = ?6, version = version + 1, updated_at = ?7
             WHERE tenant_id = ?1 AND agent_id = ?2 AND owner = ?3 AND label = ?4 AND version = ?8",
            params![
                tenant.as_str(),
                block.agent_id.as_str(),
                owner,
                block.label,
                block.value,
                block.limit,
                now,
                block.expected_version
            ],
        )?
    };
    if changed == 0 {
        return Err(stale_block(block));
    }
    rows::exec(
        conn,
        "INSERT INTO memory_block_versions (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![block.agent_id.as_str(), owner, block.label, block.expected_version + 1, tenant.as_str(), block.value, block.operation, run, block.principal, now],
    )?;
    Ok(())
}

/// Sets the agent's own row of a block being added (`operation` `create`
/// or `add`): a new row, or a new version of one a past version had.
pub(crate) fn put_agent_block(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    spec: &MemoryBlockSpec,
    operation: &str,
    principal: &str,
    now: i64,
) -> Result<(), StoreError> {
    let version: i64 = rows::row(
        conn,
        "INSERT INTO memory_blocks (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
         VALUES (?1, 'agent', ?2, ?3, ?4, ?5, 1, ?6)
         ON CONFLICT (agent_id, owner, label) DO UPDATE SET value = excluded.value,
             char_limit = excluded.char_limit, version = memory_blocks.version + 1, updated_at = excluded.updated_at
         RETURNING version",
        params![agent.as_str(), spec.label, tenant.as_str(), spec.value, spec.limit(), now],
        |r| r.get(0),
    )?;
    rows::exec(
        conn,
        "INSERT INTO memory_block_versions (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
         VALUES (?1, 'agent', ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)",
        params![agent.as_str(), spec.label, version, tenant.as_str(), spec.value, operation, principal, now],
    )?;
    Ok(())
}

fn one_block(
    conn: &Connection,
    tenant: &TenantId,
    write: &BlockWrite,
) -> Result<MemoryBlock, StoreError> {
    blocks_of(
        conn,
        tenant,
        &write.agent_id,
        std::slice::from_ref(&write.owner),
    )?
    .into_iter()
    .find(|b| b.label == write.label)
    .ok_or_else(|| StoreError::NotFound(format!("memory block `{}`", write.label)))
}

fn change_blocks(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    change: &BlockChange,
    principal: &str,
) -> Result<Agent, StoreError> {
    let current = agents::get_agent(conn, tenant, &AgentRef::Id(agent.clone()))?
        .ok_or_else(|| StoreError::NotFound("agent".into()))?;
    let config = changed_config(&current.config, change)?;
    let updated = agents::update_agent(conn, tenant, agent, &config)?;
    let now = millis(Utc::now());
    for spec in &change.add {
        put_agent_block(conn, tenant, agent, spec, "add", principal, now)?;
    }
    super::governance::append(conn, tenant, &change_events(principal, &updated, change))?;
    Ok(updated)
}

#[async_trait]
impl BlockStore for SqliteStore {
    async fn memory_blocks_of(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        owners: &[BlockOwner],
    ) -> StoreResult<Vec<MemoryBlock>> {
        let (tenant, agent, owners) = (tenant.clone(), agent.clone(), owners.to_vec());
        self.read(move |c| blocks_of(c, &tenant, &agent, &owners))
            .await
    }

    async fn block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        owner: &BlockOwner,
        label: &str,
    ) -> StoreResult<Vec<MemoryBlockVersion>> {
        let (tenant, agent, owner, label) = (
            tenant.clone(),
            agent.clone(),
            owner.clone(),
            label.to_owned(),
        );
        self.read(move |c| history(c, &tenant, &agent, &owner, &label))
            .await
    }

    async fn set_memory_block(
        &self,
        tenant: &TenantId,
        write: BlockWrite,
        audit: NewAuditEvent,
    ) -> StoreResult<MemoryBlock> {
        let tenant = tenant.clone();
        self.write(move |c| {
            write_block(c, &tenant, &write, None, millis(Utc::now()))?;
            super::governance::append(c, &tenant, std::slice::from_ref(&audit))?;
            one_block(c, &tenant, &write)
        })
        .await
    }

    async fn change_agent_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        change: BlockChange,
        principal: &str,
    ) -> StoreResult<Agent> {
        let (tenant, agent, principal) = (tenant.clone(), agent.clone(), principal.to_owned());
        self.write(move |c| change_blocks(c, &tenant, &agent, &change, &principal))
            .await
    }
}
