//! Tenants, API keys, agents and their memory blocks.

use super::rows::{self, AGENT_COLUMNS};
use super::{Conn, OnUnique};
use chrono::Utc;
use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::{AgentId, KeyId, TenantId};
use roster_store::millis;
use roster_store::{AgentRef, ApiKeyRecord, NewApiKey, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) async fn insert_api_key(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    key: &NewApiKey,
) -> Result<ApiKeyRecord> {
    c.exec(
        crate::sql!(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        ),
        crate::args![&key.id, tenant, &key.name, &key.key_hash, key.is_admin, Utc::now()],
    )
    .await?;
    Ok(ApiKeyRecord {
        id: key.id.clone(),
        tenant_id: tenant.clone(),
        name: key.name.clone(),
        is_admin: key.is_admin,
    })
}

/// Runs inside a transaction. Makes `key` the tenant's only admin key:
/// revokes the others and inserts it, or restores it if it was an earlier
/// admin key (rotating back).
pub(crate) async fn set_admin_key(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    key: &NewApiKey,
) -> Result<ApiKeyRecord> {
    c.exec(
        crate::sql!(
            "UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND is_admin = TRUE AND revoked_at IS NULL AND key_hash <> $3"
        ),
        crate::args![tenant, Utc::now(), &key.key_hash],
    )
    .await?;
    let existing = c
        .opt(
            crate::sql!("SELECT id, tenant_id, name FROM api_keys WHERE key_hash = $1 FOR UPDATE"),
            crate::args![&key.key_hash],
            |row| {
                Ok((
                    row.get::<String>(0)?,
                    row.get::<String>(1)?,
                    row.get::<String>(2)?,
                ))
            },
        )
        .await?;
    match existing {
        None => insert_api_key(c, tenant, key).await,
        Some((id, owner, name)) if owner == tenant.as_str() => {
            c.exec(
                crate::sql!(
                    "UPDATE api_keys SET revoked_at = NULL, is_admin = TRUE WHERE id = $1 AND tenant_id = $2"
                ),
                crate::args![id.as_str(), tenant],
            )
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

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("an agent named `{name}` already exists"))
}

/// Runs inside a transaction. Two nodes creating the same name at once both
/// pass the check; the live-name unique index then turns the loser into the
/// same `Conflict`.
pub(crate) async fn create_agent(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &NewAgent,
    principal: &str,
) -> Result<Agent> {
    let taken = c
        .opt(
            crate::sql!(
                "SELECT id FROM agents WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL"
            ),
            crate::args![tenant, &agent.name],
            |row| row.get::<String>(0),
        )
        .await?;
    if taken.is_some() {
        return Err(name_taken(&agent.name));
    }
    let config = roster_store::blocks::created_config(agent)?;
    let id = AgentId::generate();
    let now = millis(Utc::now());
    c.exec(
        crate::sql!(
            "INSERT INTO agents (id, tenant_id, name, current_version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)"
        ),
        crate::args![&id, tenant, &agent.name, now],
    )
    .await
    .on_unique(|| name_taken(&agent.name))?;
    let config = serde_json::to_string(&config)?;
    c.exec(
        crate::sql!(
            "INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at) VALUES ($1, 1, $2, $3, $4)"
        ),
        crate::args![&id, tenant, config.as_str(), now],
    )
    .await?;
    operational(c, tenant, &id, &agent.config).await?;
    for block in &agent.memory_blocks {
        super::blocks::put_agent_block(c, tenant, &id, block, "create", principal, now).await?;
    }
    let created = get_agent(c, tenant, &AgentRef::Id(id))
        .await?
        .ok_or_else(|| StoreError::Database("agent vanished after insert".into()))?;
    audit_agent(c, tenant, "agent.create", principal, created).await
}

pub(crate) async fn get_agent(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentRef,
) -> Result<Option<Agent>> {
    let (sql, value) = match agent {
        AgentRef::Id(id) => (
            crate::sql!(
                "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
                 WHERE a.tenant_id = $1 AND a.id = $2 AND a.deleted_at IS NULL"
            ),
            id.as_str(),
        ),
        AgentRef::Name(name) => (
            crate::sql!(
                "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
                 WHERE a.tenant_id = $1 AND a.name = $2 AND a.deleted_at IS NULL"
            ),
            name.as_str(),
        ),
    };
    Ok(c.opt(sql, crate::args![tenant, value], rows::agent).await?)
}

/// Copies the settings that act on every run of the agent, whichever
/// version its session pins (the webhooks told when a run finishes, the
/// most runs at once), to the agent's row: the transactions that start and
/// finish runs read them there without decoding a configuration.
async fn operational(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    config: &AgentConfig,
) -> Result<()> {
    let notify = if config.notify.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&config.notify)?)
    };
    c.exec(
        crate::sql!(
            "UPDATE agents SET notify = $3, max_running = $4 WHERE tenant_id = $1 AND id = $2"
        ),
        crate::args![
            tenant,
            agent,
            notify.as_deref(),
            config.max_running.map(i64::from)
        ],
    )
    .await?;
    Ok(())
}

/// Runs inside a transaction; the agent row is locked so concurrent updates
/// get consecutive versions instead of colliding.
pub(crate) async fn update_agent(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    config: &AgentConfig,
) -> Result<Agent> {
    let current = c
        .opt(
            crate::sql!(
                "SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE"
            ),
            crate::args![tenant, agent],
            |row| row.get::<i64>(0),
        )
        .await?;
    let version = current.ok_or_else(|| StoreError::NotFound("agent".into()))? + 1;
    let now = millis(Utc::now());
    operational(c, tenant, agent, config).await?;
    let config = serde_json::to_string(config)?;
    c.exec(
        crate::sql!(
            "INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at) VALUES ($1, $2, $3, $4, $5)"
        ),
        crate::args![agent, version, tenant, config.as_str(), now],
    )
    .await?;
    c.exec(
        crate::sql!(
            "UPDATE agents SET current_version = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2"
        ),
        crate::args![tenant, agent, version, now],
    )
    .await?;
    get_agent(c, tenant, &AgentRef::Id(agent.clone()))
        .await?
        .ok_or_else(|| StoreError::NotFound("agent".into()))
}

/// Soft-deletes the agent; whether a live agent was deleted.
pub(crate) async fn delete_agent(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    principal: &str,
) -> Result<bool> {
    let Some(found) = get_agent(c, tenant, &AgentRef::Id(agent.clone())).await? else {
        return Ok(false);
    };
    let changed = c
        .exec(
            crate::sql!("UPDATE agents SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
            crate::args![tenant, agent, Utc::now()],
        )
        .await?;
    if changed > 0 {
        audit_agent(c, tenant, "agent.delete", principal, found).await?;
    }
    Ok(changed > 0)
}

/// Each agent change appends its audit event in the same transaction.
pub(crate) async fn audit_agent(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    action: &str,
    principal: &str,
    agent: Agent,
) -> Result<Agent> {
    let event = crate::agent_event(action, principal, &agent);
    super::audit::append(c, tenant, &[event]).await?;
    Ok(agent)
}
