//! Tenants, keys, agents and memory blocks on PostgreSQL.

use super::is_unique_violation;
use super::rows::{self, AGENT_COLUMNS, BLOCK_COLUMNS, BLOCK_VERSION_COLUMNS, KEY_COLUMNS};
use crate::types::millis;
use crate::{AgentRef, ApiKeyRecord, NewApiKey, StoreError};
use chrono::Utc;
use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::{AgentId, KeyId, TenantId};
use sqlx::postgres::PgConnection;

pub(crate) async fn ensure_tenant(
    conn: &mut PgConnection,
    tenant: &TenantId,
    name: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(name)
    .bind(millis(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn insert_api_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    key: &NewApiKey,
) -> Result<ApiKeyRecord, StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.id.as_str())
    .bind(tenant.as_str())
    .bind(&key.name)
    .bind(&key.key_hash)
    .bind(key.is_admin)
    .bind(millis(Utc::now()))
    .execute(conn)
    .await?;
    Ok(ApiKeyRecord {
        id: key.id.clone(),
        tenant_id: tenant.clone(),
        name: key.name.clone(),
        is_admin: key.is_admin,
    })
}

pub(crate) async fn find_api_key(
    conn: &mut PgConnection,
    hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let sql =
        format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL");
    rows::first(conn, sqlx::query(&sql).bind(hash), rows::key_record).await
}

pub(crate) async fn get_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &KeyId,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"
    );
    let query = sqlx::query(&sql).bind(tenant.as_str()).bind(id.as_str());
    rows::first(conn, query, rows::key_record).await
}

pub(crate) async fn count_admin_keys(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND is_admin AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .fetch_one(conn)
    .await?)
}

pub(crate) async fn revoke_admin_keys(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND is_admin AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(millis(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("an agent named `{name}` already exists"))
}

/// Runs inside a transaction. Two nodes creating the same name at once both
/// pass the check; the live-name unique index then turns the loser into the
/// same `Conflict`.
pub(crate) async fn create_agent(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &NewAgent,
    principal: &str,
) -> Result<Agent, StoreError> {
    let taken: Option<String> = sqlx::query_scalar(
        "SELECT id FROM agents WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(&agent.name)
    .fetch_optional(&mut *conn)
    .await?;
    if taken.is_some() {
        return Err(name_taken(&agent.name));
    }
    let config = crate::blocks::created_config(agent)?;
    let id = AgentId::generate();
    let now = millis(Utc::now());
    sqlx::query(
        "INSERT INTO agents (id, tenant_id, name, current_version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .bind(&agent.name)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            name_taken(&agent.name)
        } else {
            StoreError::from(e)
        }
    })?;
    sqlx::query(
        "INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at) VALUES ($1, 1, $2, $3, $4)",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .bind(serde_json::to_string(&config)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for block in &agent.memory_blocks {
        super::blocks::put_agent_block(conn, tenant, &id, block, "create", principal, now).await?;
    }
    get_agent(conn, tenant, &AgentRef::Id(id))
        .await?
        .ok_or_else(|| StoreError::Database("agent vanished after insert".into()))
}

pub(crate) async fn list_agents(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<Agent>, StoreError> {
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
         WHERE a.tenant_id = $1 AND a.deleted_at IS NULL ORDER BY a.name"
    );
    rows::collect(conn, sqlx::query(&sql).bind(tenant.as_str()), rows::agent).await
}

pub(crate) async fn get_agent(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentRef,
) -> Result<Option<Agent>, StoreError> {
    let (column, value) = match agent {
        AgentRef::Id(id) => ("a.id", id.as_str()),
        AgentRef::Name(name) => ("a.name", name.as_str()),
    };
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
         WHERE a.tenant_id = $1 AND {column} = $2 AND a.deleted_at IS NULL"
    );
    let query = sqlx::query(&sql).bind(tenant.as_str()).bind(value);
    rows::first(conn, query, rows::agent).await
}

pub(crate) async fn get_agent_version(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
    version: i64,
) -> Result<Option<Agent>, StoreError> {
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id
         WHERE a.tenant_id = $1 AND a.id = $2 AND v.version = $3"
    );
    let query = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(version);
    rows::first(conn, query, rows::agent).await
}

/// Runs inside a transaction; the agent row is locked so concurrent updates
/// get consecutive versions instead of colliding.
pub(crate) async fn update_agent(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
    config: &AgentConfig,
) -> Result<Agent, StoreError> {
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(tenant.as_str())
    .bind(agent.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let version = current.ok_or_else(|| StoreError::NotFound("agent".into()))? + 1;
    let now = millis(Utc::now());
    sqlx::query(
        "INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(agent.as_str())
    .bind(version)
    .bind(tenant.as_str())
    .bind(serde_json::to_string(config)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE agents SET current_version = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(agent.as_str())
    .bind(version)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    get_agent(conn, tenant, &AgentRef::Id(agent.clone()))
        .await?
        .ok_or_else(|| StoreError::NotFound("agent".into()))
}

pub(crate) async fn delete_agent(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE agents SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(agent.as_str())
    .bind(millis(Utc::now()))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn list_memory_blocks(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Vec<MemoryBlock>, StoreError> {
    let sql = format!(
        "SELECT {BLOCK_COLUMNS} FROM memory_blocks WHERE tenant_id = $1 AND agent_id = $2 AND owner = 'agent' ORDER BY label"
    );
    let query = sqlx::query(&sql).bind(tenant.as_str()).bind(agent.as_str());
    rows::collect(conn, query, rows::block).await
}

pub(crate) async fn memory_block_history(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Vec<MemoryBlockVersion>, StoreError> {
    let sql = format!(
        "SELECT {BLOCK_VERSION_COLUMNS} FROM memory_block_versions
         WHERE tenant_id = $1 AND agent_id = $2 AND owner = 'agent' ORDER BY label, version"
    );
    let query = sqlx::query(&sql).bind(tenant.as_str()).bind(agent.as_str());
    rows::collect(conn, query, rows::block_version).await
}

/// Runs inside a transaction. Makes `key` the tenant's only admin key:
/// revokes the others and inserts it, or restores it if it was an earlier
/// admin key (rotating back).
pub(crate) async fn set_admin_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    key: &NewApiKey,
) -> Result<ApiKeyRecord, StoreError> {
    sqlx::query(
        "UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND is_admin AND revoked_at IS NULL AND key_hash <> $3",
    )
    .bind(tenant.as_str())
    .bind(millis(Utc::now()))
    .bind(&key.key_hash)
    .execute(&mut *conn)
    .await?;
    let existing: Option<(String, String, String)> =
        sqlx::query_as("SELECT id, tenant_id, name FROM api_keys WHERE key_hash = $1 FOR UPDATE")
            .bind(&key.key_hash)
            .fetch_optional(&mut *conn)
            .await?;
    match existing {
        None => insert_api_key(conn, tenant, key).await,
        Some((id, owner, name)) if owner == tenant.as_str() => {
            sqlx::query("UPDATE api_keys SET revoked_at = NULL, is_admin = TRUE WHERE id = $1 AND tenant_id = $2")
                .bind(&id)
                .bind(tenant.as_str())
                .execute(&mut *conn)
                .await?;
            Ok(ApiKeyRecord {
                id: KeyId::from_stored(id),
                tenant_id: tenant.clone(),
                name,
                is_admin: true,
            })
        }
        Some(_) => Err(StoreError::Conflict(
            "that key is already in use by another tenant".into(),
        )),
    }
}
