//! Memory block rows on PostgreSQL: copies, per-row history, versioned
//! writes (a run's tool edit or a person's), and block changes that store a
//! new agent version. See [`crate::blocks`]; mirrors `sqlite/blocks.rs`.

use super::rows::{self, BLOCK_COLUMNS, BLOCK_VERSION_COLUMNS};
use super::{agents, PgStore};
use crate::blocks::{change_events, changed_config, stale_block};
use crate::types::millis;
use crate::*;
use async_trait::async_trait;
use chrono::Utc;
use roster_core::blocks::BlockOwner;
use roster_core::memory::MemoryBlockSpec;
use sqlx::postgres::PgConnection;

pub(crate) async fn blocks_of(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
    owners: &[BlockOwner],
) -> Result<Vec<MemoryBlock>, StoreError> {
    let owners: Vec<String> = owners.iter().map(ToString::to_string).collect();
    let sql = format!(
        "SELECT {BLOCK_COLUMNS} FROM memory_blocks
         WHERE tenant_id = $1 AND agent_id = $2 AND owner = ANY($3) ORDER BY label, owner"
    );
    let query = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(owners);
    rows::collect(conn, query, rows::block).await
}

pub(crate) async fn history(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
    owner: &BlockOwner,
    label: &str,
) -> Result<Vec<MemoryBlockVersion>, StoreError> {
    let sql = format!(
        "SELECT {BLOCK_VERSION_COLUMNS} FROM memory_block_versions
         WHERE tenant_id = $1 AND agent_id = $2 AND owner = $3 AND label = $4 ORDER BY version"
    );
    let query = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(owner.to_string())
        .bind(label);
    rows::collect(conn, query, rows::block_version).await
}

/// Runs inside a transaction. Updates the row if it is still at the
/// expected version, or makes the copy (version 0); appends the version.
pub(crate) async fn write_block(
    conn: &mut PgConnection,
    tenant: &TenantId,
    block: &BlockWrite,
    run: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let owner = block.owner.to_string();
    let changed = if block.expected_version == 0 {
        sqlx::query(
            "INSERT INTO memory_blocks (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, 1, $7 WHERE EXISTS (SELECT 1 FROM agents WHERE id = $1 AND tenant_id = $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(block.agent_id.as_str())
        .bind(&owner)
        .bind(&block.label)
        .bind(tenant.as_str())
        .bind(&block.value)
        .bind(i64::from(block.limit))
        .bind(now)
        .execute(&mut *conn)
        .await?
    } else {
        sqlx::query(
            "UPDATE memory_blocks SET value = $5, char_limit = $6, version = version + 1, updated_at = $7
             WHERE tenant_id = $1 AND agent_id = $2 AND owner = $3 AND label = $4 AND version = $8",
        )
        .bind(tenant.as_str())
        .bind(block.agent_id.as_str())
        .bind(&owner)
        .bind(&block.label)
        .bind(&block.value)
        .bind(i64::from(block.limit))
        .bind(now)
        .bind(block.expected_version)
        .execute(&mut *conn)
        .await?
    }
    .rows_affected();
    if changed == 0 {
        return Err(stale_block(block));
    }
    sqlx::query(
        "INSERT INTO memory_block_versions (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(block.agent_id.as_str())
    .bind(&owner)
    .bind(&block.label)
    .bind(block.expected_version + 1)
    .bind(tenant.as_str())
    .bind(&block.value)
    .bind(&block.operation)
    .bind(run)
    .bind(&block.principal)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the agent's own row of a block being added (`operation` `create`
/// or `add`): a new row, or a new version of one a past version had.
pub(crate) async fn put_agent_block(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
    spec: &MemoryBlockSpec,
    operation: &str,
    principal: &str,
    now: i64,
) -> Result<(), StoreError> {
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO memory_blocks (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
         VALUES ($1, 'agent', $2, $3, $4, $5, 1, $6)
         ON CONFLICT (agent_id, owner, label) DO UPDATE SET value = EXCLUDED.value,
             char_limit = EXCLUDED.char_limit, version = memory_blocks.version + 1, updated_at = EXCLUDED.updated_at
         RETURNING version",
    )
    .bind(agent.as_str())
    .bind(&spec.label)
    .bind(tenant.as_str())
    .bind(&spec.value)
    .bind(i64::from(spec.limit()))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO memory_block_versions (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
         VALUES ($1, 'agent', $2, $3, $4, $5, $6, NULL, $7, $8)",
    )
    .bind(agent.as_str())
    .bind(&spec.label)
    .bind(version)
    .bind(tenant.as_str())
    .bind(&spec.value)
    .bind(operation)
    .bind(principal)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Runs inside a transaction; `update_agent` locks the agent row, so
/// concurrent changes apply one after the other to the current version.
async fn change_blocks(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
    change: &BlockChange,
    principal: &str,
) -> Result<Agent, StoreError> {
    sqlx::query("SELECT 1 FROM agents WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .execute(&mut *conn)
        .await?;
    let current = agents::get_agent(conn, tenant, &AgentRef::Id(agent.clone()))
        .await?
        .ok_or_else(|| StoreError::NotFound("agent".into()))?;
    let config = changed_config(&current.config, change)?;
    let updated = agents::update_agent(conn, tenant, agent, &config).await?;
    let now = millis(Utc::now());
    for spec in &change.add {
        put_agent_block(conn, tenant, agent, spec, "add", principal, now).await?;
    }
    super::governance::append(conn, tenant, &change_events(principal, &updated, change)).await?;
    Ok(updated)
}

#[async_trait]
impl BlockStore for PgStore {
    async fn memory_blocks_of(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        owners: &[BlockOwner],
    ) -> StoreResult<Vec<MemoryBlock>> {
        let mut c = self.conn().await?;
        blocks_of(&mut c, tenant, agent, owners).await
    }

    async fn block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        owner: &BlockOwner,
        label: &str,
    ) -> StoreResult<Vec<MemoryBlockVersion>> {
        let mut c = self.conn().await?;
        history(&mut c, tenant, agent, owner, label).await
    }

    async fn set_memory_block(
        &self,
        tenant: &TenantId,
        write: BlockWrite,
        audit: NewAuditEvent,
    ) -> StoreResult<MemoryBlock> {
        let mut tx = self.begin().await?;
        write_block(&mut tx, tenant, &write, None, millis(Utc::now())).await?;
        super::governance::append(&mut tx, tenant, std::slice::from_ref(&audit)).await?;
        let block = blocks_of(
            &mut tx,
            tenant,
            &write.agent_id,
            std::slice::from_ref(&write.owner),
        )
        .await?
        .into_iter()
        .find(|b| b.label == write.label)
        .ok_or_else(|| StoreError::NotFound(format!("memory block `{}`", write.label)))?;
        tx.commit().await?;
        Ok(block)
    }

    async fn change_agent_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        change: BlockChange,
        principal: &str,
    ) -> StoreResult<Agent> {
        let mut tx = self.begin().await?;
        let out = change_blocks(&mut tx, tenant, agent, &change, principal).await?;
        tx.commit().await?;
        Ok(out)
    }
}
