//! The journal write on SQLite: one run's step, items, events, ledger rows,
//! block edit and status change, all in one savepoint of a group commit.

use super::rows;
use crate::types::{check_writable, events_for, from_millis, millis};
use crate::{Committed, JournalWrite, RunTransition, StepWrite, StoreError};
use chrono::Utc;
use roster_core::event::SequencedEvent;
use roster_core::item::{Item, ItemContent};
use roster_core::TenantId;
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn commit(
    conn: &Connection,
    tenant: &TenantId,
    write: &JournalWrite,
) -> Result<Committed, StoreError> {
    let now = millis(Utc::now());
    let run = write.run_id.as_str();
    let status: Option<String> = rows::row(
        conn,
        "SELECT status FROM runs WHERE id = ?1 AND tenant_id = ?2 AND session_id = ?3",
        params![run, tenant.as_str(), write.session_id.as_str()],
        |r| r.get(0),
    )
    .optional()?;
    let status = status.ok_or_else(|| StoreError::NotFound("run".into()))?;
    check_writable(run, &status, write)?;

    let mut items = Vec::with_capacity(write.items.len() + 1);
    if let Some(RunTransition::Start) = &write.transition {
        let (input, first): (String, Option<i64>) = rows::row(
            conn,
            "SELECT input, first_seq FROM runs WHERE id = ?1 AND tenant_id = ?2",
            params![run, tenant.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // A retried run starts again without a second copy of its input.
        let first = match first {
            Some(first) => first,
            None => {
                let item = append_item(
                    conn,
                    tenant,
                    write,
                    &ItemContent::UserMessage { text: input },
                    now,
                )?;
                let seq = item.seq;
                items.push(item);
                seq
            }
        };
        rows::exec(
            conn,
            "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?2), first_seq = ?4 WHERE id = ?1 AND tenant_id = ?3",
            params![run, now, tenant.as_str(), first],
        )?;
    }
    if let Some(RunTransition::Retry { actor, .. }) = &write.transition {
        rows::exec(
            conn,
            "UPDATE runs SET status = 'queued', output = NULL, error = NULL, finished_at = NULL, waiting = NULL,
             queue_key = ?3, actor = COALESCE(?4, actor) WHERE id = ?1 AND tenant_id = ?2",
            params![run, tenant.as_str(), crate::types::back_of_queue(), actor],
        )?;
    }
    if let Some(wait) = &write.wait {
        rows::exec(
            conn,
            "UPDATE runs SET waiting = ?3 WHERE id = ?1 AND tenant_id = ?2",
            params![run, tenant.as_str(), crate::types::wait_text(wait)?],
        )?;
    }
    if !write.audit.is_empty() {
        super::governance::append(conn, tenant, &write.audit)?;
    }
    for step in &write.steps {
        write_step(conn, tenant, run, step, now)?;
    }
    for content in &write.items {
        items.push(append_item(conn, tenant, write, content, now)?);
    }
    if let Some(block) = &write.block_write {
        super::blocks::write_block(conn, tenant, block, Some(run), now)?;
    }
    let memories = if write.memory_writes.is_empty() {
        crate::MemoryWritten::default()
    } else {
        super::records::write_memories(conn, tenant, &write.memory_writes)?
    };
    if let Some(summary) = &write.summary {
        rows::exec(
            conn,
            "INSERT INTO session_summaries (session_id, version, tenant_id, through_seq, text, run_id, step, created_at)
             VALUES (?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM session_summaries WHERE session_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7)",
            params![write.session_id.as_str(), tenant.as_str(), summary.through_seq, summary.text, run, summary.step, now],
        )?;
    }
    insert_ledger(conn, tenant, &write.ledger, now)?;
    if matches!(write.transition, Some(RunTransition::AwaitApproval)) {
        super::approvals::insert(
            conn,
            tenant,
            run,
            write.session_id.as_str(),
            &write.approvals,
            now,
        )?;
        rows::exec(
            conn,
            "UPDATE runs SET status = 'awaiting_approval' WHERE id = ?1 AND tenant_id = ?2",
            params![run, tenant.as_str()],
        )?;
    }
    if let Some(RunTransition::Finish {
        status,
        output,
        error,
    }) = &write.transition
    {
        let error = error.as_ref().map(serde_json::to_string).transpose()?;
        conn.prepare_cached(
            "UPDATE runs SET status = ?2, output = ?3, error = ?4, finished_at = ?5, waiting = NULL WHERE id = ?1 AND tenant_id = ?6",
        )?
        .execute(params![run, status.as_str(), output, error, now, tenant.as_str()])?;
        if let Some((first, last)) = run_items(conn, write)? {
            super::records::log(
                conn,
                tenant,
                "items",
                &format!("{}:{first}:{last}", write.session_id),
                now,
            )?;
            super::jobs::create_jobs(conn, tenant, write, first, last, now)?;
        }
    }

    // Keyed by the run alone: this write has already proved the run is the
    // tenant's, and a tenant column here would defeat SQLite's MAX-by-index.
    let mut seq: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = ?1")?
        .query_row(params![run], |r| r.get(0))?;
    let mut events = Vec::new();
    let mut insert = conn.prepare_cached("INSERT INTO run_events (run_id, seq, tenant_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for event in events_for(write, &items) {
        seq += 1;
        insert.execute(params![
            run,
            seq,
            tenant.as_str(),
            serde_json::to_string(&event)?,
            now
        ])?;
        events.push(SequencedEvent { seq, event });
    }
    Ok(Committed {
        items,
        events,
        memories,
    })
}

fn append_item(
    conn: &Connection,
    tenant: &TenantId,
    write: &JournalWrite,
    content: &ItemContent,
    now: i64,
) -> Result<Item, StoreError> {
    let session = write.session_id.as_str();
    // Keyed by the session alone, for the reason given for events above.
    let last: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM items WHERE session_id = ?1")?
        .query_row(params![session], |r| r.get(0))?;
    let tokens = content.token_estimate();
    conn.prepare_cached(
        "INSERT INTO items (session_id, seq, tenant_id, run_id, kind, content, tokens, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![session, last + 1, tenant.as_str(), write.run_id.as_str(), content.kind(), serde_json::to_string(content)?, tokens, now])?;
    Ok(Item {
        seq: last + 1,
        run_id: Some(write.run_id.clone()),
        content: content.clone(),
        tokens,
        created_at: from_millis(now),
    })
}

fn write_step(
    conn: &Connection,
    tenant: &TenantId,
    run: &str,
    step: &StepWrite,
    now: i64,
) -> Result<(), StoreError> {
    match step {
        StepWrite::Started { n, kind, input } => {
            conn.prepare_cached(
                "INSERT INTO steps (run_id, n, tenant_id, kind, status, input, started_at) VALUES (?1, ?2, ?3, ?4, 'started', ?5, ?6)",
            )?
            .execute(params![run, n, tenant.as_str(), kind.as_str(), serde_json::to_string(input)?, now])?;
        }
        StepWrite::Completed {
            n,
            kind,
            input,
            output,
        } => {
            let updated = conn
                .prepare_cached("UPDATE steps SET status = 'completed', output = ?3, finished_at = ?4 WHERE run_id = ?1 AND n = ?2 AND tenant_id = ?5 AND status = 'started'")?
                .execute(params![run, n, serde_json::to_string(output)?, now, tenant.as_str()])?;
            if updated == 0 {
                conn.prepare_cached(
                    "INSERT INTO steps (run_id, n, tenant_id, kind, status, input, output, started_at, finished_at)
                     VALUES (?1, ?2, ?3, ?4, 'completed', ?5, ?6, ?7, ?7)",
                )?
                .execute(params![run, n, tenant.as_str(), kind.as_str(), serde_json::to_string(input)?, serde_json::to_string(output)?, now])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        StoreError::Conflict(format!("step {n} of run {run} is already completed"))
                    }
                    _ => StoreError::from(e),
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
fn run_items(conn: &Connection, write: &JournalWrite) -> Result<Option<(i64, i64)>, StoreError> {
    let first: Option<i64> = rows::row(
        conn,
        "SELECT first_seq FROM runs WHERE id = ?1",
        params![write.run_id.as_str()],
        |r| r.get(0),
    )?;
    let Some(first) = first else {
        return Ok(None);
    };
    let last: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM items WHERE session_id = ?1")?
        .query_row(params![write.session_id.as_str()], |r| r.get(0))?;
    Ok((last >= first).then_some((first, last)))
}

pub(crate) fn insert_ledger(
    conn: &Connection,
    tenant: &TenantId,
    entries: &[roster_core::ledger::NewLedgerEntry],
    now: i64,
) -> Result<(), StoreError> {
    for entry in entries {
        conn.prepare_cached(
            "INSERT INTO ledger (tenant_id, provider, model, tokens_in, tokens_out, latency_ms, outcome, error, agent_id, session_id, run_id, step, created_at, region, route, cost_micros)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            tenant.as_str(), entry.provider, entry.model, entry.tokens_in, entry.tokens_out, entry.latency_ms,
            entry.outcome, entry.error, entry.agent_id, entry.session_id, entry.run_id, entry.step, now,
            entry.region, entry.route.as_ref().map(serde_json::to_string).transpose()?, entry.cost_micros
        ])?;
    }
    Ok(())
}
