//! The journal write: one run's steps, items, events, ledger rows, block
//! edit, memory writes and status change, all in one transaction.
//!
//! On PostgreSQL the first statement locks the run row and its session row:
//! the run lock serialises commits to one run (event numbering, the finished
//! check), the session lock serialises item numbering across runs of one
//! session and orders commits against `create_run`'s busy check. SQLite's
//! single writer gives the same order without locks.

use super::{Conn, OnUnique};
use chrono::Utc;
use roster_core::event::SequencedEvent;
use roster_core::item::{Item, ItemContent};
use roster_core::ledger::NewLedgerEntry;
use roster_core::run::{RunError, RunStatus};
use roster_core::{RunId, SessionId, TenantId};
use roster_store::{check_writable, events_for, from_millis, millis};
use roster_store::{BusyPolicy, CreatedRun, NewRun, RunParent};
use roster_store::{Committed, JournalWrite, RunTransition, StepWrite, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Runs inside a write transaction; any error leaves it to be rolled back.
pub(crate) async fn commit(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    write: &JournalWrite,
) -> Result<Committed> {
    let now = millis(Utc::now());
    let run = write.run_id.as_str();
    let found: RunHead = c
        .opt(
            crate::sql_pick!(
                postgres: "SELECT r.status, r.input, r.first_seq, r.rolled_back, r.deliver_to, r.depth, r.parent_run_id, r.actor,
                                  r.caller_waits, r.held_since, r.turn
                           FROM runs r JOIN sessions s ON s.id = r.session_id AND s.tenant_id = r.tenant_id
                           WHERE r.id = $1 AND r.tenant_id = $2 AND r.session_id = $3
                           FOR UPDATE OF r, s",
                sqlite: "SELECT status, input, first_seq, rolled_back, deliver_to, depth, parent_run_id, actor, caller_waits, held_since, turn FROM runs WHERE id = $1 AND tenant_id = $2 AND session_id = $3",
            ),
            crate::args![run, tenant, &write.session_id],
            |row| {
                Ok(RunHead {
                    status: row.get(0)?,
                    input: row.get(1)?,
                    first_seq: row.get(2)?,
                    rolled_back: row.get(3)?,
                    deliver_to: row.get(4)?,
                    depth: row.get(5)?,
                    parent_run_id: row.get(6)?,
                    actor: row.get(7)?,
                    caller_waits: row.get(8)?,
                    held_since: row.get(9)?,
                    turn: row.opt_json(10)?,
                })
            },
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("run".into()))?;
    let RunHead {
        status,
        input,
        first_seq,
        ..
    } = &found;
    let (input, first_seq) = (input.clone(), *first_seq);
    check_writable(run, status, write)?;

    let mut items = Vec::with_capacity(write.items.len() + 1);
    let mut next_item: Option<i64> = None;
    if let Some(RunTransition::Start) = &write.transition {
        let held = super::limits::admit(
            c,
            tenant,
            &write.run_id,
            &write.session_id,
            found.caller_waits,
            found.held_since,
        )
        .await?;
        if held.is_some() {
            // A limit holds it: it stays queued, with nothing written.
            return Ok(Committed {
                held,
                ..Committed::default()
            });
        }
        // A retried run starts again without a second copy of its input.
        let first = match first_seq {
            Some(first) => first,
            None => {
                let inputs = match found.turn.as_ref().filter(|t| !t.items.is_empty()) {
                    Some(turn) => turn.items.clone(),
                    None => vec![ItemContent::UserMessage { text: input }],
                };
                let mut first = None;
                for content in &inputs {
                    let item = append_item(c, tenant, write, &mut next_item, content, now).await?;
                    first.get_or_insert(item.seq);
                    items.push(item);
                }
                first.unwrap_or_default()
            }
        };
        c.exec(
            crate::sql!("UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $2), first_seq = $4,
                         queued_reason = NULL, held_since = NULL WHERE id = $1 AND tenant_id = $3"),
            crate::args![run, now, tenant, first],
        )
        .await?;
    }
    if let Some(RunTransition::Retry { actor, .. }) = &write.transition {
        c.exec(
            crate::sql!(
                "UPDATE runs SET status = 'queued', output = NULL, error = NULL, finished_at = NULL, waiting = NULL,
                 queue_key = $3, actor = COALESCE($4, actor) WHERE id = $1 AND tenant_id = $2"
            ),
            crate::args![run, tenant, roster_store::back_of_queue().as_str(), actor],
        )
        .await?;
    }
    if let Some(wait) = &write.wait {
        let wait = roster_store::wait_text(wait)?;
        c.exec(
            crate::sql!("UPDATE runs SET waiting = $3 WHERE id = $1 AND tenant_id = $2"),
            crate::args![run, tenant, wait.as_deref()],
        )
        .await?;
    }
    if !write.audit.is_empty() {
        super::audit::append(c, tenant, &write.audit).await?;
    }
    for step in &write.steps {
        write_step(c, tenant, run, step, now).await?;
    }
    for content in &write.items {
        items.push(append_item(c, tenant, write, &mut next_item, content, now).await?);
    }
    if let Some(block) = &write.block_write {
        super::blocks::write_block(c, tenant, block, Some(run), now).await?;
    }
    insert_ledger(c, tenant, &write.ledger, now).await?;
    if matches!(write.transition, Some(RunTransition::AwaitApproval)) {
        super::approvals::insert(
            c,
            tenant,
            run,
            write.session_id.as_str(),
            &write.approvals,
            now,
        )
        .await?;
        c.exec(
            crate::sql!(
                "UPDATE runs SET status = 'awaiting_approval' WHERE id = $1 AND tenant_id = $2"
            ),
            crate::args![run, tenant],
        )
        .await?;
    }
    if let Some(RunTransition::Finish {
        status,
        output,
        error,
    }) = &write.transition
    {
        let error = error.as_ref().map(serde_json::to_string).transpose()?;
        c.exec(
            crate::sql!("UPDATE runs SET status = $2, output = $3, error = $4, finished_at = $5, waiting = NULL WHERE id = $1 AND tenant_id = $6"),
            crate::args![run, status.as_str(), output, &error, now, tenant],
        )
        .await?;
    }

    let mut seq: i64 = c
        .one(
            // Each planner's fast form: SQLite answers MAX() from the primary
            // key (a tenant column would defeat that; the run is already
            // proved the tenant's); PostgreSQL may answer MAX() with a full
            // scan of the run's rows when statistics are stale.
            crate::sql_pick!(
                postgres: "SELECT COALESCE((SELECT seq FROM run_events WHERE tenant_id = $2 AND run_id = $1 ORDER BY seq DESC LIMIT 1), 0)",
                sqlite: "SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = $1 AND $2 IS NOT NULL",
            ),
            crate::args![run, tenant],
            |row| row.get(0),
        )
        .await?;
    let mut events = Vec::new();
    for event in events_for(write, &items) {
        seq += 1;
        let body = serde_json::to_string(&event)?;
        c.exec(
            crate::sql!("INSERT INTO run_events (run_id, seq, tenant_id, body, created_at) VALUES ($1, $2, $3, $4, $5)"),
            crate::args![run, seq, tenant, body.as_str(), now],
        )
        .await?;
        events.push(SequencedEvent { seq, event });
    }
    if let Some(summary) = &write.summary {
        c.exec(
            crate::sql!(
                "INSERT INTO session_summaries (session_id, version, tenant_id, through_seq, text, run_id, step, created_at)
                 VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM session_summaries WHERE session_id = $1), $2, $3, $4, $5, $6, $7)"
            ),
            crate::args![&write.session_id, tenant, summary.through_seq, &summary.text, run, summary.step, now],
        )
        .await?;
    }
    // Before the search log append below: a hand-off's delivery locks the
    // caller's session row, and taking it after the log lock would invert
    // the order a commit in that session takes them in (a deadlock).
    let notifications = match &write.transition {
        Some(RunTransition::Finish {
            status,
            output,
            error,
        }) => {
            let finished = super::notifications::Finished {
                run,
                session: &write.session_id,
                status: *status,
                output: output.as_deref(),
                error: error.as_ref(),
                actor: found.actor.as_deref(),
                parent: found.parent_run_id.as_deref(),
                at: now,
            };
            super::notifications::enqueue(c, tenant, &finished).await?
        }
        _ => 0,
    };
    let delivered = match (&write.transition, &found.deliver_to) {
        (
            Some(RunTransition::Finish {
                status,
                output,
                error,
            }),
            Some(to),
        ) => {
            let result = HandOffResult {
                run,
                at: now,
                status: *status,
                output: output.as_deref(),
                error: error.as_ref(),
            };
            deliver(
                c,
                tenant,
                write,
                &found,
                &SessionId::from_stored(to.clone()),
                &result,
            )
            .await?
        }
        _ => None,
    };
    // Last: on PostgreSQL the search log append takes the lock that orders
    // log ids, held until this transaction commits.
    let memories = if write.memory_writes.is_empty() {
        crate::MemoryWritten::default()
    } else {
        super::records::write_memories(c, tenant, &write.memory_writes).await?
    };
    // A rolled-back run's items are out of the history: nothing of them is
    // searched or extracted into memory.
    if matches!(write.transition, Some(RunTransition::Finish { .. })) && !found.rolled_back {
        if let Some((first, last)) = run_items(c, tenant, write).await? {
            super::jobs::create_jobs(c, tenant, write, first, last, now).await?;
            let reference = format!("{}:{first}:{last}", write.session_id);
            super::records::log_all(c, tenant, "items", &[reference], now).await?;
        }
    }
    Ok(Committed {
        delivered,
        items,
        events,
        memories,
        held: None,
        notifications,
    })
}

/// The columns of the run a write is for, read (and on PostgreSQL locked)
/// first.
struct RunHead {
    status: String,
    input: String,
    first_seq: Option<i64>,
    rolled_back: bool,
    deliver_to: Option<String>,
    depth: i64,
    parent_run_id: Option<String>,
    actor: Option<String>,
    caller_waits: bool,
    held_since: Option<i64>,
    turn: Option<roster_core::turn::Turn>,
}

/// How a handed-off run ended.
struct HandOffResult<'a> {
    run: &'a str,
    /// When it finished (milliseconds).
    at: i64,
    status: RunStatus,
    output: Option<&'a str>,
    error: Option<&'a RunError>,
}

/// Queues a handed-off run's result as a new input of the session that
/// handed it off, in the transaction that finishes it: delivered exactly
/// once (its idempotency key is the run's), or never if that session is gone
/// or the run that handed it off was cancelled (whoever cancelled it wants
/// nothing more of it).
async fn deliver(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    write: &JournalWrite,
    found: &RunHead,
    to: &SessionId,
    result: &HandOffResult<'_>,
) -> Result<Option<roster_core::run::Run>> {
    if let Some(parent) = &found.parent_run_id {
        let status: Option<String> = c
            .opt(
                crate::sql!("SELECT status FROM runs WHERE id = $1 AND tenant_id = $2"),
                crate::args![parent.as_str(), tenant],
                |row| row.get(0),
            )
            .await?;
        if status.as_deref() == Some(RunStatus::Cancelled.as_str()) {
            return Ok(None);
        }
    }
    let agent: Option<String> = c
        .opt(
            crate::sql!(
                "SELECT a.name FROM sessions s JOIN agents a ON a.id = s.agent_id AND a.tenant_id = s.tenant_id
                 WHERE s.id = $1 AND s.tenant_id = $2"
            ),
            crate::args![&write.session_id, tenant],
            |row| row.get(0),
        )
        .await?;
    let agent = agent.unwrap_or_else(|| "(deleted agent)".to_owned());
    let input = roster_core::delegation::hand_off_input(
        &agent,
        result.run,
        result.status,
        result.output,
        result.error,
    );
    // The chain goes on from the task's own (`key:… > agent:caller`), so
    // the result's run still answers to the key that started it all.
    let actor = format!(
        "{} > agent:{agent}",
        found.actor.as_deref().unwrap_or("unknown")
    );
    let new = NewRun {
        turn: Default::default(),
        session_id: to.clone(),
        input,
        // One per end of the task: a failed task retried and finished
        // again reports again. The write that finishes a run runs once
        // (a finished run takes no further write), so this never repeats.
        idempotency_key: Some(format!("handoff:{}:{}", result.run, result.at)),
        if_busy: BusyPolicy::Queue,
        actor: Some(actor),
        parent: Some(RunParent {
            run_id: RunId::from_stored(result.run.to_owned()),
            depth: u32::try_from(found.depth.saturating_sub(1)).unwrap_or(0),
            deliver_to: None,
            max_siblings: None,
            caller_waits: false,
        }),
        notify: Vec::new(),
    };
    match super::runs::queue_run(c, tenant, &new).await {
        Ok(CreatedRun::Created(run)) => Ok(Some(run)),
        Ok(CreatedRun::Existing(_)) => Ok(None),
        // The session that handed it off was deleted: nobody to tell.
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The newest item's `seq` in a session, 0 for none (see the events'
/// sequence in [`commit`] for why each dialect reads it its own way).
async fn last_item(c: &mut Conn<'_>, tenant: &TenantId, write: &JournalWrite) -> Result<i64> {
    Ok(c
        .one(
            crate::sql_pick!(
                postgres: "SELECT COALESCE((SELECT seq FROM items WHERE tenant_id = $2 AND session_id = $1 ORDER BY seq DESC LIMIT 1), 0)",
                sqlite: "SELECT COALESCE(MAX(seq), 0) FROM items WHERE session_id = $1 AND $2 IS NOT NULL",
            ),
            crate::args![&write.session_id, tenant],
            |row| row.get(0),
        )
        .await?)
}

/// Appends one item with the session's next `seq`. The session is locked
/// for this transaction, so the newest is read once and counted up locally.
async fn append_item(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    write: &JournalWrite,
    next: &mut Option<i64>,
    content: &ItemContent,
    now: i64,
) -> Result<Item> {
    let seq = match *next {
        Some(seq) => seq,
        None => last_item(c, tenant, write).await? + 1,
    };
    let tokens = content.token_estimate();
    let body = serde_json::to_string(content)?;
    c.exec(
        crate::sql!("INSERT INTO items (session_id, seq, tenant_id, run_id, kind, content, tokens, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        crate::args![&write.session_id, seq, tenant, &write.run_id, content.kind(), body.as_str(), tokens, now],
    )
    .await?;
    *next = Some(seq + 1);
    Ok(Item {
        seq,
        run_id: Some(write.run_id.clone()),
        content: content.clone(),
        tokens,
        created_at: from_millis(now),
    })
}

async fn write_step(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    run: &str,
    step: &StepWrite,
    now: i64,
) -> Result<()> {
    match step {
        StepWrite::Started { n, kind, input } => {
            let input = serde_json::to_string(input)?;
            c.exec(
                crate::sql!("INSERT INTO steps (run_id, n, tenant_id, kind, status, input, started_at) VALUES ($1, $2, $3, $4, 'started', $5, $6)"),
                crate::args![run, *n, tenant, kind.as_str(), input.as_str(), now],
            )
            .await?;
        }
        StepWrite::Completed {
            n,
            kind,
            input,
            output,
        } => {
            let output = serde_json::to_string(output)?;
            let updated = c
                .exec(
                    crate::sql!(
                        "UPDATE steps SET status = 'completed', output = $3, finished_at = $4
                         WHERE run_id = $1 AND n = $2 AND tenant_id = $5 AND status = 'started'"
                    ),
                    crate::args![run, *n, output.as_str(), now, tenant],
                )
                .await?;
            if updated == 0 {
                let input = serde_json::to_string(input)?;
                c.exec(
                    crate::sql!(
                        "INSERT INTO steps (run_id, n, tenant_id, kind, status, input, output, started_at, finished_at)
                         VALUES ($1, $2, $3, $4, 'completed', $5, $6, $7, $7)"
                    ),
                    crate::args![run, *n, tenant, kind.as_str(), input.as_str(), output.as_str(), now],
                )
                .await
                .on_unique(|| {
                    StoreError::Conflict(format!("step {n} of run {run} is already completed"))
                })?;
            }
        }
    }
    Ok(())
}

/// The first and last item of a finishing run (from its input to the
/// session's newest item); `None` for a run that never started. A finished
/// run hands this range to the search index (`conversation_search`) and
/// to its extraction jobs.
async fn run_items(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    write: &JournalWrite,
) -> Result<Option<(i64, i64)>> {
    let first: Option<i64> = c
        .one(
            crate::sql!("SELECT first_seq FROM runs WHERE id = $1"),
            crate::args![&write.run_id],
            |row| row.get(0),
        )
        .await?;
    let Some(first) = first else {
        return Ok(None);
    };
    let last = last_item(c, tenant, write).await?;
    Ok((last >= first).then_some((first, last)))
}

pub(crate) async fn insert_ledger(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    entries: &[NewLedgerEntry],
    now: i64,
) -> Result<()> {
    for entry in entries {
        let route = entry
            .route
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        c.exec(
            crate::sql!(
                "INSERT INTO ledger (tenant_id, provider, model, tokens_in, tokens_out, latency_ms, outcome, error, agent_id, session_id, run_id, step, created_at, region, route, cost_micros)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ),
            crate::args![
                tenant,
                &entry.provider,
                &entry.model,
                entry.tokens_in,
                entry.tokens_out,
                entry.latency_ms,
                &entry.outcome,
                &entry.error,
                &entry.agent_id,
                &entry.session_id,
                &entry.run_id,
                entry.step,
                now,
                &entry.region,
                &route,
                entry.cost_micros
            ],
        )
        .await?;
    }
    Ok(())
}
