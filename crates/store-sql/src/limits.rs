//! Limits on runs executing at once: the admission check the transaction
//! starting a run makes, and the reads behind `GET /v1/limits` and the
//! fair queue's wake-ups. See [`roster_core::limits`] for the rules.

use super::Conn;
use chrono::Utc;
use roster_core::limits::{self, Occupancy, QueuedReason, RunLimits, Waiting};
use roster_core::{AgentId, RunId, SessionId, TenantId};
use roster_store::limits::{AgentUsage, LimitUsage};
use roster_store::{from_millis, millis, NewAuditEvent, StoreError};
use std::collections::HashMap;

type Result<T> = std::result::Result<T, StoreError>;

/// The row holding the server's defaults.
const DEFAULTS: &str = "*";
/// Most waiting runs read ahead of one deciding; beyond them the queue is
/// first come, first served only among these.
const QUEUE_WINDOW: i64 = 1000;

fn limit(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

/// The tenant's own limits and the server's defaults.
async fn stored(c: &mut Conn<'_>, tenant: &TenantId) -> Result<(RunLimits, RunLimits)> {
    let rows: Vec<(String, Option<i64>, Option<i64>)> = c
        .all(
            crate::sql!(
                "SELECT tenant_id, runs, runs_per_agent FROM tenant_limits WHERE tenant_id IN ($1, $2)"
            ),
            crate::args![tenant, DEFAULTS],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .await?;
    let (mut own, mut defaults) = (RunLimits::default(), RunLimits::default());
    for (id, runs, per_agent) in rows {
        let read = RunLimits {
            runs: limit(runs),
            runs_per_agent: limit(per_agent),
        };
        if id == DEFAULTS {
            defaults = read;
        } else {
            own = read;
        }
    }
    Ok((own, defaults))
}

/// Running runs of the tenant (a run its caller waits for aside), by agent.
async fn occupancy(c: &mut Conn<'_>, tenant: &TenantId) -> Result<Occupancy> {
    let rows: Vec<(String, i64)> = c
        .all(
            crate::sql!(
                "SELECT s.agent_id, COUNT(*) FROM runs r JOIN sessions s ON s.id = r.session_id AND s.tenant_id = r.tenant_id
                 WHERE r.tenant_id = $1 AND r.status = 'running' AND r.caller_waits = FALSE
                 GROUP BY s.agent_id"
            ),
            crate::args![tenant],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .await?;
    let mut occupancy = Occupancy::default();
    for (agent, n) in rows {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        occupancy.running = occupancy.running.saturating_add(n);
        occupancy
            .running_by_agent
            .insert(AgentId::from_stored(agent), n);
    }
    Ok(occupancy)
}

/// A waiting run: its id, session, agent, the agent's own limit, since when.
type Held = (RunId, SessionId, AgentId, Option<u32>, i64);

/// Runs a limit holds, oldest first (before `before`, when given).
async fn held(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    before: Option<(i64, &RunId)>,
) -> Result<Vec<Held>> {
    let (since, run) = before.map_or((None, None), |(s, r)| (Some(s), Some(r)));
    Ok(c.all(
        crate::sql!(
            "SELECT r.id, r.session_id, s.agent_id, a.max_running, r.held_since
             FROM runs r JOIN sessions s ON s.id = r.session_id AND s.tenant_id = r.tenant_id
             JOIN agents a ON a.id = s.agent_id AND a.tenant_id = s.tenant_id
             WHERE r.tenant_id = $1 AND r.held_since IS NOT NULL AND r.status = 'queued'
               AND ($2 IS NULL OR r.held_since < $2 OR (r.held_since = $2 AND r.id < $3))
             ORDER BY r.held_since, r.id LIMIT $4"
        ),
        crate::args![tenant, since, run, QUEUE_WINDOW],
        |row| {
            Ok((
                RunId::from_stored(row.get(0)?),
                SessionId::from_stored(row.get(1)?),
                AgentId::from_stored(row.get(2)?),
                limit(row.get(3)?),
                row.get(4)?,
            ))
        },
    )
    .await?)
}

fn waiting(held: &[Held], per_agent: Option<u32>) -> Vec<Waiting> {
    held.iter()
        .map(|(_, _, agent, own, _)| Waiting {
            agent: agent.clone(),
            agent_limit: own.or(per_agent),
        })
        .collect()
}

/// Decides, inside the transaction that would start `run`, whether it may:
/// `None`, or why it waits (recorded on the run, which stays queued). A run
/// its caller waits for is never held.
pub(crate) async fn admit(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    run: &RunId,
    session: &SessionId,
    caller_waits: bool,
    held_since: Option<i64>,
) -> Result<Option<QueuedReason>> {
    if caller_waits {
        return Ok(None);
    }
    let (own, defaults) = stored(c, tenant).await?;
    let in_force = own.or(defaults);
    let agent: Option<(String, Option<i64>)> = c
        .opt(
            crate::sql!(
                "SELECT a.id, a.max_running FROM sessions s JOIN agents a ON a.id = s.agent_id AND a.tenant_id = s.tenant_id
                 WHERE s.id = $1 AND s.tenant_id = $2"
            ),
            crate::args![session, tenant],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .await?;
    let Some((agent, agent_own)) = agent else {
        return Ok(None);
    };
    let agent = AgentId::from_stored(agent);
    let agent_limit = limit(agent_own).or(in_force.runs_per_agent);
    if in_force.runs.is_none() && agent_limit.is_none() {
        return Ok(None);
    }
    if c.is_postgres() {
        // Admissions of one tenant in turn: each counts the runs the one
        // before it started.
        c.exec(
            crate::sql!("SELECT pg_advisory_xact_lock(hashtext('roster-limits:' || $1))"),
            crate::args![tenant],
        )
        .await?;
    }
    let occupancy = occupancy(c, tenant).await?;
    let ahead = held(c, tenant, held_since.map(|s| (s, run))).await?;
    let ahead = waiting(&ahead, in_force.runs_per_agent);
    let now = millis(Utc::now());
    match limits::admits(in_force.runs, &agent, agent_limit, &occupancy, &ahead) {
        Ok(()) => Ok(None),
        Err((reason, detail)) => {
            let since = held_since.unwrap_or(now);
            let reason = QueuedReason {
                reason: reason.to_owned(),
                detail,
                since: from_millis(since),
            };
            c.exec(
                crate::sql!(
                    "UPDATE runs SET queued_reason = $3, held_since = $4 WHERE id = $1 AND tenant_id = $2"
                ),
                crate::args![run, tenant, serde_json::to_string(&reason)?.as_str(), since],
            )
            .await?;
            Ok(Some(reason))
        }
    }
}

pub(crate) async fn set(
    c: &mut Conn<'_>,
    tenant: &str,
    limits: &RunLimits,
    audit: Option<(&TenantId, &NewAuditEvent)>,
) -> Result<()> {
    c.exec(
        crate::sql!(
            "INSERT INTO tenant_limits (tenant_id, runs, runs_per_agent, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE SET runs = $2, runs_per_agent = $3, updated_at = $4"
        ),
        crate::args![
            tenant,
            limits.runs.map(i64::from),
            limits.runs_per_agent.map(i64::from),
            millis(Utc::now())
        ],
    )
    .await?;
    if let Some((tenant, audit)) = audit {
        super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    }
    Ok(())
}

pub(crate) async fn usage(c: &mut Conn<'_>, tenant: &TenantId) -> Result<LimitUsage> {
    let (own, defaults) = stored(c, tenant).await?;
    let in_force = own.or(defaults);
    let occupancy = occupancy(c, tenant).await?;
    let waiting_rows: Vec<(String, i64)> = c
        .all(
            crate::sql!(
                "SELECT s.agent_id, COUNT(*) FROM runs r JOIN sessions s ON s.id = r.session_id AND s.tenant_id = r.tenant_id
                 WHERE r.tenant_id = $1 AND r.held_since IS NOT NULL AND r.status = 'queued' GROUP BY s.agent_id"
            ),
            crate::args![tenant],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .await?;
    let own_limits: Vec<(String, Option<i64>)> = c
        .all(
            crate::sql!(
                "SELECT id, max_running FROM agents WHERE tenant_id = $1 AND deleted_at IS NULL AND max_running IS NOT NULL"
            ),
            crate::args![tenant],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .await?;
    fn usage_of(
        agents: &mut HashMap<AgentId, AgentUsage>,
        agent: AgentId,
        limit: Option<u32>,
    ) -> &mut AgentUsage {
        agents.entry(agent.clone()).or_insert(AgentUsage {
            agent_id: agent,
            limit,
            running: 0,
            waiting: 0,
        })
    }
    let per_agent = in_force.runs_per_agent;
    let mut agents: HashMap<AgentId, AgentUsage> = HashMap::new();
    for (agent, n) in &occupancy.running_by_agent {
        usage_of(&mut agents, agent.clone(), per_agent).running = *n;
    }
    let mut waiting = 0u32;
    for (agent, n) in waiting_rows {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        waiting = waiting.saturating_add(n);
        usage_of(&mut agents, AgentId::from_stored(agent), per_agent).waiting = n;
    }
    for (agent, own) in own_limits {
        usage_of(&mut agents, AgentId::from_stored(agent), per_agent).limit =
            limit(own).or(per_agent);
    }
    let mut agents: Vec<AgentUsage> = agents.into_values().collect();
    agents.sort_by(|a, b| a.agent_id.as_str().cmp(b.agent_id.as_str()));
    Ok(LimitUsage {
        limits: in_force,
        tenant: own,
        defaults,
        running: occupancy.running,
        waiting,
        agents,
    })
}

/// Sessions whose held run would start now, oldest waiting first.
pub(crate) async fn startable(
    c: &mut Conn<'_>,
    tenant: Option<&TenantId>,
    max: u32,
) -> Result<Vec<(TenantId, SessionId)>> {
    let tenants: Vec<TenantId> = match tenant {
        Some(t) => vec![t.clone()],
        None => c
            .all(
                crate::sql!(
                    "SELECT DISTINCT tenant_id FROM runs WHERE held_since IS NOT NULL AND status = 'queued'"
                ),
                &[],
                |row| Ok(TenantId::from_stored(row.get(0)?)),
            )
            .await?,
    };
    let mut out = Vec::new();
    for tenant in tenants {
        let held = held(c, &tenant, None).await?;
        if held.is_empty() {
            continue;
        }
        let (own, defaults) = stored(c, &tenant).await?;
        let in_force = own.or(defaults);
        let occupancy = occupancy(c, &tenant).await?;
        let can = limits::startable(
            in_force.runs,
            &occupancy,
            &waiting(&held, in_force.runs_per_agent),
        );
        for ((_, session, ..), yes) in held.into_iter().zip(can) {
            if yes && out.len() < max as usize {
                out.push((tenant.clone(), session));
            }
        }
    }
    Ok(out)
}

crate::store_impl! {
    impl roster_store::limits::LimitStore {
        write set_default_limits(limits: RunLimits) -> () = |c| set(c, DEFAULTS, &limits, None).await;
        write set_tenant_limits(tenant: &TenantId, limits: RunLimits, audit: NewAuditEvent) -> () =
            |c| set(c, tenant.as_str(), &limits, Some((&tenant, &audit))).await;
        read limit_usage(tenant: &TenantId) -> LimitUsage = |c| usage(c, &tenant).await;
        read startable_held(tenant: Option<&TenantId>, max: u32) -> Vec<(TenantId, SessionId)> =
            |c| startable(c, tenant.as_ref(), max).await;
    }
}
