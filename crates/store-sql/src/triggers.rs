//! Triggers and their deliveries. See [`roster_store::triggers`].

use super::{Conn, Row};
use chrono::Utc;
use roster_core::run::Run;
use roster_core::{AgentId, KeyId, SessionId, TenantId, TriggerId};
use roster_store::millis;
use roster_store::triggers::{Delivery, HookTarget, NewTrigger, Trigger};
use roster_store::{BusyPolicy, CreatedRun, NewAuditEvent, NewRun, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

const TRIGGER_COLUMNS: &str =
    "id, agent_id, template, session_id, created_by, created_at, secret_sealed, key_id, tenant_id";

fn trigger(row: &Row<'_>) -> Result<Trigger> {
    Ok(Trigger {
        id: TriggerId::from_stored(row.get(0)?),
        agent_id: AgentId::from_stored(row.get(1)?),
        template: row.get(2)?,
        session_id: row.get::<Option<String>>(3)?.map(SessionId::from_stored),
        created_by: row.get(4)?,
        created_at: row.time(5)?,
    })
}

fn target(row: &Row<'_>) -> Result<HookTarget> {
    Ok(HookTarget {
        trigger: trigger(row)?,
        secret_sealed: row.get(6)?,
        key_id: KeyId::from_stored(row.get(7)?),
        tenant: TenantId::from_stored(row.get(8)?),
    })
}

async fn create(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewTrigger,
    audit: &NewAuditEvent,
) -> Result<Trigger> {
    let id = new.id.clone();
    c.exec(
        crate::sql!(
            "INSERT INTO triggers (id, tenant_id, agent_id, template, session_id, secret_sealed, created_by, key_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        crate::args![
            id.as_str(),
            tenant,
            &new.agent_id,
            new.template.as_str(),
            new.session_id.as_ref(),
            new.secret_sealed.as_str(),
            new.created_by.as_str(),
            &new.key_id,
            millis(Utc::now())
        ],
    )
    .await?;
    let mut audit = audit.clone();
    audit.resource = format!("trigger:{id}");
    super::audit::append(c, tenant, std::slice::from_ref(&audit)).await?;
    get(c, tenant, &id)
        .await?
        .ok_or_else(|| StoreError::NotFound("trigger".into()))
}

async fn get(c: &mut Conn<'_>, tenant: &TenantId, id: &TriggerId) -> Result<Option<Trigger>> {
    Ok(c.opt(
        crate::sql!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id.as_str()],
        trigger,
    )
    .await?)
}

async fn delete(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &TriggerId,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let n = c
        .exec(
            crate::sql!("DELETE FROM triggers WHERE tenant_id = $1 AND id = $2"),
            crate::args![tenant, id.as_str()],
        )
        .await?;
    if n > 0 {
        super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    }
    Ok(n > 0)
}

/// The trigger's row is locked first (PostgreSQL), so two copies of one
/// delivery sent at once start one run.
async fn deliver(c: &mut Conn<'_>, tenant: &TenantId, d: &Delivery) -> Result<(Run, bool)> {
    let found = c
        .opt(
            crate::sql!(
                "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
            ),
            crate::args![tenant, d.trigger.as_str()],
            trigger,
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("trigger".into()))?;
    let earlier: Option<String> = c
        .opt(
            crate::sql!(
                "SELECT run_id FROM trigger_deliveries WHERE trigger_id = $1 AND delivery_id = $2 AND tenant_id = $3"
            ),
            crate::args![d.trigger.as_str(), d.delivery_id.as_str(), tenant],
            |row| row.get(0),
        )
        .await?;
    if let Some(run) = earlier {
        let run = c
            .opt(
                crate::sql!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2"),
                crate::args![tenant, run.as_str()],
                super::rows::run,
            )
            .await?
            .ok_or_else(|| StoreError::NotFound("run".into()))?;
        return Ok((run, true));
    }
    let session = match &found.session_id {
        Some(session) => session.clone(),
        None => {
            let version: i64 = c
                .opt(
                    crate::sql!("SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
                    crate::args![tenant, &found.agent_id],
                    |row| row.get(0),
                )
                .await?
                .ok_or_else(|| StoreError::NotFound("agent".into()))?;
            super::sessions::create_session(c, tenant, &found.agent_id, version, d.user.as_deref())
                .await?
                .id
        }
    };
    let new = NewRun {
        turn: Default::default(),
        session_id: session.clone(),
        input: d.input.clone(),
        idempotency_key: Some(format!("hook:{}:{}", found.id, d.delivery_id)),
        if_busy: BusyPolicy::Queue,
        actor: Some(d.actor.clone()),
        parent: None,
        notify: Vec::new(),
    };
    let run = match super::runs::queue_run(c, tenant, &new).await? {
        CreatedRun::Created(run) | CreatedRun::Existing(run) => run,
    };
    c.exec(
        crate::sql!(
            "INSERT INTO trigger_deliveries (trigger_id, delivery_id, tenant_id, run_id, session_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)"
        ),
        crate::args![
            found.id.as_str(),
            d.delivery_id.as_str(),
            tenant,
            &run.id,
            &session,
            millis(Utc::now())
        ],
    )
    .await?;
    Ok((run, false))
}

use super::rows::RUN_COLUMNS;

crate::store_impl! {
    impl roster_store::triggers::TriggerStore {
        write create_trigger(tenant: &TenantId, trigger: NewTrigger, audit: NewAuditEvent) -> Trigger =
            |c| create(c, &tenant, &trigger, &audit).await;
        read get_trigger(tenant: &TenantId, id: &TriggerId) -> Option<Trigger> = |c| get(c, &tenant, &id).await;
        read list_triggers(tenant: &TenantId) -> Vec<Trigger> = |c| c.all(
            crate::sql!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE tenant_id = $1 ORDER BY id"),
            crate::args![&tenant], trigger).await;
        write delete_trigger(tenant: &TenantId, id: &TriggerId, audit: NewAuditEvent) -> bool =
            |c| delete(c, &tenant, &id, &audit).await;
        /// By id alone: a hook carries no key, so this is how it learns its tenant.
        read hook_target(id: &TriggerId) -> Option<HookTarget> = |c| c.opt(
            crate::sql!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE id = $1"),
            crate::args![id.as_str()], target).await;
        write deliver(tenant: &TenantId, delivery: Delivery) -> (Run, bool) = |c| deliver(c, &tenant, &delivery).await;
    }
}
