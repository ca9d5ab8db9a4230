//! Tenants, keys, agents and memory blocks on SQLite.

use super::blocks::BLOCK_COLUMNS;
use super::rows::{self, AGENT_COLUMNS};
use crate::types::millis;
use crate::{AgentRef, ApiKeyRecord, NewApiKey, StoreError};
use chrono::Utc;
use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::{AgentId, KeyId, TenantId};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn ensure_tenant(
    conn: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<(), StoreError> {
    rows::exec(
        conn,
        "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
        params![tenant.as_str(), name, millis(Utc::now())],
    )?;
    Ok(())
}

pub(crate) fn insert_api_key(
    conn: &Connection,
    tenant: &TenantId,
    key: &NewApiKey,
) -> Result<ApiKeyRecord, StoreError> {
    rows::exec(
        conn,
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key.id.as_str(), tenant.as_str(), key.name, key.key_hash, key.is_admin, millis(Utc::now())],
    )?;
    Ok(ApiKeyRecord {
        id: key.id.clone(),
        tenant_id: tenant.clone(),
        name: key.name.clone(),
        is_admin: key.is_admin,
    })
}

fn key_record(row: &rusqlite::Row<'_>) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: KeyId::from_stored(row.get(0)?),
        tenant_id: TenantId::from_stored(row.get(1)?),
        name: row.get(2)?,
        is_admin: row.get(3)?,
    })
}

pub(crate) fn find_api_key(
    conn: &Connection,
    hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tenant_id, name, is_admin FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
    )?;
    rows::first(&mut stmt, params![hash], key_record)
}

pub(crate) fn get_key(
    conn: &Connection,
    tenant: &TenantId,
    id: &KeyId,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tenant_id, name, is_admin FROM api_keys WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL",
    )?;
    rows::first(&mut stmt, params![tenant.as_str(), id.as_str()], key_record)
}

pub(crate) fn count_admin_keys(conn: &Connection, tenant: &TenantId) -> Result<i64, StoreError> {
    Ok(rows::row(
        conn,
        "SELECT COUNT(*) FROM api_keys WHERE tenant_id = ?1 AND is_admin = 1 AND revoked_at IS NULL",
        params![tenant.as_str()],
        |r| r.get(0),
    )?)
}

pub(crate) fn revoke_admin_keys(conn: &Connection, tenant: &TenantId) -> Result<(), StoreError> {
    rows::exec(
        conn,
        "UPDATE api_keys SET revoked_at = ?2 WHERE tenant_id = ?1 AND is_admin = 1 AND revoked_at IS NULL",
        params![tenant.as_str(), millis(Utc::now())],
    )?;
    Ok(())
}

pub(crate) fn create_agent(
    conn: &Connection,
    tenant: &TenantId,
    agent: &NewAgent,
    principal: &str,
) -> Result<Agent, StoreError> {
    let taken: Option<String> = rows::row(
        conn,
        "SELECT id FROM agents WHERE tenant_id = ?1 AND name = ?2 AND deleted_at IS NULL",
        params![tenant.as_str(), agent.name],
        |r| r.get(0),
    )
    .optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "an agent named `{}` already exists",
            agent.name
        )));
    }
    let config = crate::blocks::created_config(agent)?;
    let id = AgentId::generate();
    let now = millis(Utc::now());
    rows::exec(
        conn,
        "INSERT INTO agents (id, tenant_id, name, current_version, created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?4)",
        params![id.as_str(), tenant.as_str(), agent.name, now],
    )?;
    rows::exec(
        conn,
        "INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at) VALUES (?1, 1, ?2, ?3, ?4)",
        params![id.as_str(), tenant.as_str(), serde_json::to_string(&config)?, now],
    )?;
    for block in &agent.memory_blocks {
        super::blocks::put_agent_block(conn, tenant, &id, block, "create", principal, now)?;
    }
    get_agent(conn, tenant, &AgentRef::Id(id))?
        .ok_or_else(|| StoreError::Database("agent vanished after insert".into()))
}

pub(crate) fn list_agents(conn: &Connection, tenant: &TenantId) -> Result<Vec<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
         WHERE a.tenant_id = ?1 AND a.deleted_at IS NULL ORDER BY a.name"
    ))?;
    rows::collect(&mut stmt, params![tenant.as_str()], rows::agent)
}

pub(crate) fn get_agent(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentRef,
) -> Result<Option<Agent>, StoreError> {
    let (column, value) = match agent {
        AgentRef::Id(id) => ("a.id", id.as_str()),
        AgentRef::Name(name) => ("a.name", name.as_str()),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
         WHERE a.tenant_id = ?1 AND {column} = ?2 AND a.deleted_at IS NULL"
    ))?;
    rows::first(&mut stmt, params![tenant.as_str(), value], rows::agent)
}

pub(crate) fn get_agent_version(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    version: i64,
) -> Result<Option<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id
         WHERE a.tenant_id = ?1 AND a.id = ?2 AND v.version = ?3"
    ))?;
    rows::first(
        &mut stmt,
        params![tenant.as_str(), agent.as_str(), version],
        rows::agent,
    )
}

pub(crate) fn update_agent(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    config: &AgentConfig,
) -> Result<Agent, StoreError> {
    let current: Option<i64> = rows::row(
        conn,
            "SELECT current_version FROM agents WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            params![tenant.as_str(), agent.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let version = current.ok_or_else(|| StoreError::NotFound("agent".into()))? + 1;
    let now = millis(Utc::now());
    rows::exec(
        conn,
        "INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![agent.as_str(), version, tenant.as_str(), serde_json::to_string(config)?, now],
    )?;
    rows::exec(
        conn,
        "UPDATE agents SET current_version = ?3, updated_at = ?4 WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), agent.as_str(), version, now],
    )?;
    get_agent(conn, tenant, &AgentRef::Id(agent.clone()))?
        .ok_or_else(|| StoreError::NotFound("agent".into()))
}

pub(crate) fn delete_agent(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<bool, StoreError> {
    let changed = rows::exec(
        conn,
        "UPDATE agents SET deleted_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        params![tenant.as_str(), agent.as_str(), millis(Utc::now())],
    )?;
    Ok(changed > 0)
}

pub(crate) fn list_memory_blocks(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Vec<MemoryBlock>, StoreError> {
    let mut stmt = conn.prepare_cached(
        &format!("SELECT {BLOCK_COLUMNS} FROM memory_blocks WHERE tenant_id = ?1 AND agent_id = ?2 AND owner = 'agent' ORDER BY label"),
    )?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), agent.as_str()],
        super::blocks::block,
    )
}

pub(crate) fn memory_block_history(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Vec<MemoryBlockVersion>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT label, version, value, operation, run_id, principal, created_at FROM memory_block_versions
         WHERE tenant_id = ?1 AND agent_id = ?2 AND owner = 'agent' ORDER BY label, version",
    )?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), agent.as_str()],
        rows::block_version,
    )
}

/// Makes `key` the tenant's only admin key: revokes the others and inserts
/// it, or restores it if it was an earlier admin key (rotating back).
pub(crate) fn set_admin_key(
    conn: &Connection,
    tenant: &TenantId,
    key: &NewApiKey,
) -> Result<ApiKeyRecord, StoreError> {
    rows::exec(
        conn,
        "UPDATE api_keys SET revoked_at = ?2 WHERE tenant_id = ?1 AND is_admin = 1 AND revoked_at IS NULL AND key_hash <> ?3",
        params![tenant.as_str(), millis(Utc::now()), key.key_hash],
    )?;
    let existing: Option<(String, String)> = rows::row(
        conn,
        "SELECT id, tenant_id FROM api_keys WHERE key_hash = ?1",
        params![key.key_hash],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    match existing {
        None => insert_api_key(conn, tenant, key),
        Some((id, owner)) if owner == tenant.as_str() => {
            rows::exec(
                conn,
                "UPDATE api_keys SET revoked_at = NULL, is_admin = 1 WHERE id = ?1 AND tenant_id = ?2",
                params![id, tenant.as_str()],
            )?;
            get_key(conn, tenant, &KeyId::from_stored(id))?
                .ok_or_else(|| StoreError::Database("restored key vanished".into()))
        }
        Some(_) => Err(StoreError::Conflict(
            "that key is already in use by another tenant".into(),
        )),
    }
}
