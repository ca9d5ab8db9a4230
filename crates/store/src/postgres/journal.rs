//! The journal write on PostgreSQL: one run's step, items, events, ledger
//! rows, block edit and status change, all in one transaction.
//!
//! The first statement locks the run row and its session row. The run lock
//! serialises commits to one run (event numbering, the finished check); the
//! session lock serialises item numbering across runs of one session and
//! orders commits against `create_run`'s busy check.

use super::is_unique_violation;
use crate::types::{check_writable, events_for, from_millis, millis};
use crate::{Committed, JournalWrite, RunTransition, StepWrite, StoreError};
use chrono::Utc;
use roster_core::event::SequencedEvent;
use roster_core::item::{Item, ItemContent};
use roster_core::TenantId;
use sqlx::postgres::PgConnection;
use sqlx::Row;

/// Runs inside a transaction; any error leaves the caller to roll it back.
pub(crate) async fn commit(
    conn: &mut PgConnection,
    tenant: &TenantId,
    write: &JournalWrite,
) -> Result<Committed, StoreError> {
    let now = millis(Utc::now());
    let run = write.run_id.as_str();
    let locked = sqlx::query(
        "SELECT r.status, r.input, r.first_seq FROM runs r JOIN sessions s ON s.id = r.session_id AND s.tenant_id = r.tenant_id
         WHERE r.id = $1 AND r.tenant_id = $2 AND r.session_id = $3
         FOR UPDATE OF r, s",
    )
    .bind(run)
    .bind(tenant.as_str())
    .bind(write.session_id.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound("run".into()))?;
    let status: String = locked.try_get(0)?;
    check_writable(run, &status, write)?;

    let mut items = Vec::with_capacity(write.items.len() + 1);
    let mut next_item: Option<i64> = None;
    if let Some(RunTransition::Start) = &write.transition {
        // A retried run starts again without a second copy of its input.
        let first = match locked.try_get::<Option<i64>, _>(2)? {
            Some(first) => first,
            None => {
                let input: String = locked.try_get(1)?;
                let content = ItemContent::UserMessage { text: input };
                let item = append_item(conn, tenant, write, &mut next_item, &content, now).await?;
                let seq = item.seq;
                items.push(item);
                seq
            }
        };
        sqlx::query(
            "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $2), first_seq = $4 WHERE id = $1 AND tenant_id = $3",
        )
        .bind(run)
        .bind(now)
        .bind(tenant.as_str())
        .bind(first)
        .execute(&mut *conn)
        .await?;
    }
    if let Some(RunTransition::Retry { actor, .. }) = &write.transition {
        sqlx::query(
            "UPDATE runs SET status = 'queued', output = NULL, error = NULL, finished_at = NULL, waiting = NULL,
             queue_key = $3, actor = COALESCE($4, actor) WHERE id = $1 AND tenant_id = $2",
        )
        .bind(run)
        .bind(tenant.as_str())
        .bind(crate::types::back_of_queue())
        .bind(actor.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    if let Some(wait) = &write.wait {
        sqlx::query("UPDATE runs SET waiting = $3 WHERE id = $1 AND tenant_id = $2")
            .bind(run)
            .bind(tenant.as_str())
            .bind(crate::types::wait_text(wait)?)
            .execute(&mut *conn)
            .await?;
    }
    if !write.audit.is_empty() {
        super::governance::append(conn, tenant, &write.audit).await?;
    }
    for step in &write.steps {
        write_step(conn, tenant, run, step, now).await?;
    }
    for content in &write.items {
        items.push(append_item(conn, tenant, write, &mut next_item, content, now).await?);
    }
    if let Some(block) = &write.block_write {
        super::blocks::write_block(conn, tenant, block, Some(run), now).await?;
    }
    insert_ledger(conn, tenant, &write.ledger, now).await?;
    if matches!(write.transition, Some(RunTransition::AwaitApproval)) {
        super::approvals::insert(
            conn,
            tenant,
            run,
            write.session_id.as_str(),
            &write.approvals,
            now,
        )
        .await?;
        sqlx::query(
            "UPDATE runs SET status = 'awaiting_approval' WHERE id = $1 AND tenant_id = $2",
        )
        .bind(run)
        .bind(tenant.as_str())
        .execute(&mut *conn)
        .await?;
    }
    if let Some(RunTransition::Finish {
        status,
        output,
        error,
    }) = &write.transition
    {
        let error = error.as_ref().map(serde_json::to_string).transpose()?;
        sqlx::query(
            "UPDATE runs SET status = $2, output = $3, error = $4, finished_at = $5, waiting = NULL WHERE id = $1 AND tenant_id = $6",
        )
        .bind(run)
        .bind(status.as_str())
        .bind(output.as_deref())
        .bind(error)
        .bind(now)
        .bind(tenant.as_str())
        .execute(&mut *conn)
        .await?;
    }

    // `ORDER BY … DESC LIMIT 1`, not `MAX()`: the planner may answer MAX with
    // a full scan of the run's rows when statistics are stale.
    let mut seq: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT seq FROM run_events WHERE tenant_id = $2 AND run_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(run)
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or(0);
    let mut events = Vec::new();
    for event in events_for(write, &items) {
        seq += 1;
        sqlx::query(
            "INSERT INTO run_events (run_id, seq, tenant_id, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run)
        .bind(seq)
        .bind(tenant.as_str())
        .bind(serde_json::to_string(&event)?)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        events.push(SequencedEvent { seq, event });
    }
    if let Some(summary) = &write.summary {
        sqlx::query(
            "INSERT INTO session_summaries (session_id, version, tenant_id, through_seq, text, run_id, step, created_at)
             VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM session_summaries WHERE session_id = $1), $2, $3, $4, $5, $6, $7)",
        )
        .bind(write.session_id.as_str())
        .bind(tenant.as_str())
        .bind(summary.through_seq)
        .bind(&summary.text)
        .bind(run)
        .bind(summary.step)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    // Last: the search log append takes the lock that orders log ids, held
    // until this transaction commits.
    let memories = if write.memory_writes.is_empty() {
        crate::MemoryWritten::default()
    } else {
        super::records::write_memories(conn, tenant, &write.memory_writes).await?
    };
    if matches!(write.transition, Some(RunTransition::Finish { .. })) {
        if let Some((first, last)) = run_items(conn, tenant, write).await? {
            super::jobs::create_jobs(conn, tenant, write, first, last, now).await?;
            let reference = format!("{}:{first}:{last}", write.session_id);
            super::records::log_all(conn, tenant, "items", &[reference], now).await?;
        }
    }
    Ok(Committed {
        items,
        events,
        memories,
    })
}

/// Appends one item with the session's next `seq`. The session row is locked
/// by [`commit`], so the maximum is read once and then counted up locally.
async fn append_item(
    conn: &mut PgConnection,
    tenant: &TenantId,
    write: &JournalWrite,
    next: &mut Option<i64>,
    content: &ItemContent,
    now: i64,
) -> Result<Item, StoreError> {
    let session = write.session_id.as_str();
    let seq = match *next {
        Some(seq) => seq,
        None => {
            // See the events' sequence above: never `MAX()` here.
            let last: i64 = sqlx::query_scalar::<_, i64>(
                "SELECT seq FROM items WHERE tenant_id = $2 AND session_id = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(session)
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0);
            last + 1
        }
    };
    let tokens = content.token_estimate();
    sqlx::query(
        "INSERT INTO items (session_id, seq, tenant_id, run_id, kind, content, tokens, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(session)
    .bind(seq)
    .bind(tenant.as_str())
    .bind(write.run_id.as_str())
    .bind(content.kind())
    .bind(serde_json::to_string(content)?)
    .bind(i64::from(tokens))
    .bind(now)
    .execute(&mut *conn)
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
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &str,
    step: &StepWrite,
    now: i64,
) -> Result<(), StoreError> {
    match step {
        StepWrite::Started { n, kind, input } => {
            sqlx::query(
                "INSERT INTO steps (run_id, n, tenant_id, kind, status, input, started_at) VALUES ($1, $2, $3, $4, 'started', $5, $6)",
            )
            .bind(run)
            .bind(n)
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(serde_json::to_string(input)?)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        StepWrite::Completed {
            n,
            kind,
            input,
            output,
        } => {
            let output = serde_json::to_string(output)?;
            let updated = sqlx::query(
                "UPDATE steps SET status = 'completed', output = $3, finished_at = $4
                 WHERE run_id = $1 AND n = $2 AND tenant_id = $5 AND status = 'started'",
            )
            .bind(run)
            .bind(n)
            .bind(&output)
            .bind(now)
            .bind(tenant.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if updated == 0 {
                sqlx::query(
                    "INSERT INTO steps (run_id, n, tenant_id, kind, status, input, output, started_at, finished_at)
                     VALUES ($1, $2, $3, $4, 'completed', $5, $6, $7, $7)",
                )
                .bind(run)
                .bind(n)
                .bind(tenant.as_str())
                .bind(kind.as_str())
                .bind(serde_json::to_string(input)?)
                .bind(&output)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("step {n} of run {run} is already completed"))
                    } else {
                        StoreError::from(e)
                    }
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
    conn: &mut PgConnection,
    tenant: &TenantId,
    write: &JournalWrite,
) -> Result<Option<(i64, i64)>, StoreError> {
    let first: Option<i64> = sqlx::query_scalar("SELECT first_seq FROM runs WHERE id = $1")
        .bind(write.run_id.as_str())
        .fetch_one(&mut *conn)
        .await?;
    let Some(first) = first else {
        return Ok(None);
    };
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM items WHERE tenant_id = $2 AND session_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(write.session_id.as_str())
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(last.filter(|last| *last >= first).map(|last| (first, last)))
}

pub(crate) async fn insert_ledger(
    conn: &mut PgConnection,
    tenant: &TenantId,
    entries: &[roster_core::ledger::NewLedgerEntry],
    now: i64,
) -> Result<(), StoreError> {
    for entry in entries {
        sqlx::query(
            "INSERT INTO ledger (tenant_id, provider, model, tokens_in, tokens_out, latency_ms, outcome, error, agent_id, session_id, run_id, step, created_at, region, route, cost_micros)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(tenant.as_str())
        .bind(&entry.provider)
        .bind(&entry.model)
        .bind(entry.tokens_in)
        .bind(entry.tokens_out)
        .bind(entry.latency_ms)
        .bind(&entry.outcome)
        .bind(entry.error.as_deref())
        .bind(entry.agent_id.as_deref())
        .bind(entry.session_id.as_deref())
        .bind(entry.run_id.as_deref())
        .bind(entry.step)
        .bind(now)
        .bind(entry.region.as_deref())
        .bind(entry.route.as_ref().map(serde_json::to_string).transpose()?)
        .bind(entry.cost_micros)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
