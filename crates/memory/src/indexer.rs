//! The indexer: follows the store's search log and applies each change to
//! the derived index, remembering in the index itself how far it got. After
//! a crash at any point the index resumes from that position, and since an
//! upsert replaces and a delete of a missing key is harmless, re-applying a
//! change twice is too. Also the full rebuild from the store.

use crate::{MemoryError, MemoryService};
use roster_index::{Change, Doc, SearchIndex};
use roster_store::{DocumentRows, IndexRow};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Log entries applied per index commit.
const BATCH: i64 = 1_000;
/// How often the indexer looks at the log when nobody woke it.
const POLL: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_secs(1);

pub(crate) const MEMORY_KEY_PREFIX: &str = "m:";
pub(crate) const NAMESPACE_SCOPE_PREFIX: &str = "ns:";
pub(crate) const CHUNK_KEY_PREFIX: &str = "c:";
pub(crate) const SOURCE_SCOPE_PREFIX: &str = "src:";
pub(crate) const ITEM_KEY_PREFIX: &str = "i:";
pub(crate) const SESSION_SCOPE_PREFIX: &str = "ses:";

impl MemoryService {
    pub(crate) async fn follow_log(self: Arc<Self>) {
        loop {
            match self.apply_next().await {
                Ok(true) => continue,
                Ok(false) => {
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search indexer failed; retrying");
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// Applies everything the log holds now.
    pub(crate) async fn catch_up(&self) -> Result<(), MemoryError> {
        while self.apply_next().await? {}
        Ok(())
    }

    /// Applies one batch of log entries; `false` when there was none.
    async fn apply_next(&self) -> Result<bool, MemoryError> {
        let _turn = self.apply_lock.lock().await;
        let from = *self.applied.borrow();
        let entries = self.store.search_log_after(from, BATCH).await?;
        let Some(last) = entries.last().map(|e| e.id) else {
            return Ok(false);
        };
        // Later entries for the same row supersede earlier ones: read each
        // row once, as it is now.
        let mut memory_ids: Vec<String> = entries
            .iter()
            .filter(|e| e.kind == "memory")
            .map(|e| e.reference.clone())
            .collect();
        memory_ids.sort();
        memory_ids.dedup();
        let rows: HashMap<String, IndexRow> = self
            .store
            .memory_index_rows(&memory_ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let model = self.embedder_id().map(str::to_owned);
        let mut changes: Vec<Change> = memory_ids
            .into_iter()
            .map(|id| match rows.get(&id) {
                Some(row) => Change::Upsert(memory_doc(row, model.as_deref())),
                None => Change::Delete {
                    key: format!("{MEMORY_KEY_PREFIX}{id}"),
                },
            })
            .collect();
        // Documents: `document_id:max_chunks`; the largest max seen wins.
        let mut documents: HashMap<String, i64> = HashMap::new();
        for entry in entries.iter().filter(|e| e.kind == "document") {
            if let Some((id, max)) = roster_store::split_chunk_id(&entry.reference) {
                let seen = documents.entry(id.to_owned()).or_insert(0);
                *seen = (*seen).max(max);
            }
        }
        if !documents.is_empty() {
            let ids: Vec<String> = documents.keys().cloned().collect();
            let found: HashMap<String, DocumentRows> = self
                .store
                .document_index_rows(&ids)
                .await?
                .into_iter()
                .map(|d| (d.document_id.clone(), d))
                .collect();
            for (id, logged_max) in documents {
                match found.get(&id) {
                    Some(doc) => {
                        changes.extend(document_changes(doc, logged_max, model.as_deref()))
                    }
                    None => changes.extend((0..logged_max).map(|ordinal| Change::Delete {
                        key: format!("{CHUNK_KEY_PREFIX}{id}:{ordinal}"),
                    })),
                }
            }
        }
        changes.extend(self.item_changes(&entries).await?);
        let index = self.index();
        let watermark = u64::try_from(last).unwrap_or(0);
        tokio::task::spawn_blocking(move || index.apply(changes, watermark))
            .await
            .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??;
        self.applied.send_replace(last);
        Ok(true)
    }

    /// Builds a fresh index from every record and document chunk in the
    /// store and swaps it in; returns how many rows it indexed.
    /// Searches keep using the old index until the new one is complete.
    pub async fn rebuild(&self) -> Result<u64, MemoryError> {
        let staging = self.index_dir.with_extension("rebuild");
        let _ = std::fs::remove_dir_all(&staging);
        let dims = self.local_dimensions();
        // Entries logged from here on are replayed onto the new index, so a
        // write racing the scan is not lost.
        let head = self.store.search_log_head().await?;
        let fresh = {
            let dir = staging.clone();
            tokio::task::spawn_blocking(move || SearchIndex::open(&dir, dims))
                .await
                .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??
        };
        let fresh = Arc::new(fresh);
        let model = self.embedder_id().map(str::to_owned);
        let mut after = String::new();
        let mut count = 0u64;
        // Memory records first, then documents.
        loop {
            let rows = self.store.scan_memory_index_rows(&after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after.clone_from(&last.id);
            count += rows.len() as u64;
            let changes: Vec<Change> = rows
                .iter()
                .map(|r| Change::Upsert(memory_doc(r, model.as_deref())))
                .collect();
            let index = fresh.clone();
            tokio::task::spawn_blocking(move || index.apply(changes, 0))
                .await
                .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??;
        }
        let mut after = String::new();
        loop {
            let docs = self.store.scan_document_index_rows(&after, 100).await?;
            let Some(last) = docs.last() else { break };
            after.clone_from(&last.document_id);
            let changes: Vec<Change> = docs
                .iter()
                .flat_map(|d| {
                    count += d.rows.len() as u64;
                    document_changes(d, 0, model.as_deref())
                })
                .collect();
            let index = fresh.clone();
            tokio::task::spawn_blocking(move || index.apply(changes, 0))
                .await
                .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??;
        }
        // Conversation items are indexed from the log itself: scanning every
        // session's items would cost as much and find the same ones.
        let mut position = 0;
        while position < head {
            let entries = self.store.search_log_after(position, BATCH).await?;
            let Some(last) = entries.last() else { break };
            position = last.id;
            let changes = self.item_changes(&entries).await?;
            count += changes.len() as u64;
            let index = fresh.clone();
            tokio::task::spawn_blocking(move || index.apply(changes, 0))
                .await
                .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??;
        }
        let index = fresh.clone();
        let watermark = u64::try_from(head).unwrap_or(0);
        tokio::task::spawn_blocking(move || {
            index.apply(Vec::new(), watermark)?;
            index.persist()
        })
        .await
        .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??;
        drop(fresh);
        let turn = self.apply_lock.lock().await;
        // Swap directories, then reopen: the old handle keeps serving until
        // the new one is in place.
        let old = self.index_dir.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        let swap = |from: &std::path::Path, to: &std::path::Path| {
            std::fs::rename(from, to).map_err(|e| {
                MemoryError::Internal(format!(
                    "cannot move {} to {}: {e}",
                    from.display(),
                    to.display()
                ))
            })
        };
        swap(&self.index_dir, &old)?;
        swap(&staging, &self.index_dir)?;
        let reopened = crate::open_index(self.index_dir.clone(), dims).await?;
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reopened);
        self.applied.send_replace(head);
        drop(turn);
        let _ = std::fs::remove_dir_all(&old);
        self.catch_up().await?;
        Ok(count)
    }
}

impl MemoryService {
    /// Finished runs' items (`session:first:last` entries) as index
    /// documents of their session, for `conversation_search`; a deleted
    /// session's items removed. (A deleted session's `items` entries find no
    /// rows in the store, so replaying the log never brings them back.)
    async fn item_changes(
        &self,
        entries: &[roster_store::SearchLogEntry],
    ) -> Result<Vec<Change>, MemoryError> {
        let mut changes = Vec::new();
        // A deleted session (`session:last_seq`): every item key it had.
        for entry in entries
            .iter()
            .filter(|e| e.kind == roster_store::SESSION_DELETED_LOG)
        {
            let Some((session, last)) = entry.reference.rsplit_once(':') else {
                continue;
            };
            let Ok(last) = last.parse::<i64>() else {
                continue;
            };
            changes.extend((1..=last).map(|seq| Change::Delete {
                key: format!("{ITEM_KEY_PREFIX}{session}:{seq}"),
            }));
        }
        for entry in entries.iter().filter(|e| e.kind == "items") {
            let mut parts = entry.reference.rsplitn(3, ':');
            let (Some(last), Some(first), Some(session)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(first), Ok(last)) = (first.parse::<i64>(), last.parse::<i64>()) else {
                continue;
            };
            let Some(session) = roster_core::SessionId::parse(session) else {
                continue;
            };
            let items = self
                .store
                .list_items(&entry.tenant, &session, first - 1, last - first + 1)
                .await?;
            changes.extend(items.iter().filter_map(|item| {
                let text = item_text(&item.content);
                (!text.trim().is_empty()).then(|| {
                    Change::Upsert(Doc {
                        key: format!("{ITEM_KEY_PREFIX}{session}:{}", item.seq),
                        tenant: entry.tenant.to_string(),
                        scope: format!("{SESSION_SCOPE_PREFIX}{session}"),
                        text,
                        vector: None,
                    })
                })
            }));
        }
        Ok(changes)
    }
}

/// The searchable words of an item.
pub(crate) fn item_text(content: &roster_core::item::ItemContent) -> String {
    use roster_core::item::ItemContent;
    match content {
        ItemContent::UserMessage { text } | ItemContent::SystemNote { text } => text.clone(),
        ItemContent::AssistantMessage { text, tool_calls } => {
            let mut out = text.clone();
            for call in tool_calls {
                out.push_str(&format!("\n{} {}", call.name, call.arguments));
            }
            out
        }
        ItemContent::ToolResult { name, output, .. } => format!("{name}: {output}"),
        // Not read by Roster: its words are not searched.
        ItemContent::Opaque { .. } => String::new(),
    }
}

/// A document's chunks as the index holds them: its current chunks, and
/// removals of ordinals past them that an earlier, longer version had.
fn document_changes(doc: &DocumentRows, logged_max: i64, model: Option<&str>) -> Vec<Change> {
    let live = i64::try_from(doc.rows.len()).unwrap_or(i64::MAX);
    let max = doc.max_chunks.max(logged_max);
    let mut changes: Vec<Change> = doc
        .rows
        .iter()
        .map(|row| {
            Change::Upsert(Doc {
                key: format!("{CHUNK_KEY_PREFIX}{}", row.id),
                tenant: row.tenant.to_string(),
                scope: format!("{SOURCE_SCOPE_PREFIX}{}", row.scope),
                text: row.text.clone(),
                vector: row
                    .embedding
                    .as_ref()
                    .filter(|e| Some(e.model.as_str()) == model)
                    .map(|e| e.vector.clone()),
            })
        })
        .collect();
    changes.extend((live..max).map(|ordinal| Change::Delete {
        key: format!("{CHUNK_KEY_PREFIX}{}:{ordinal}", doc.document_id),
    }));
    changes
}

/// A record as the index holds it; a vector from another embedder than the
/// current one is left out (the backfill replaces it).
pub(crate) fn memory_doc(row: &IndexRow, model: Option<&str>) -> Doc {
    Doc {
        key: format!("{MEMORY_KEY_PREFIX}{}", row.id),
        tenant: row.tenant.to_string(),
        scope: format!("{NAMESPACE_SCOPE_PREFIX}{}", row.scope),
        text: row.text.clone(),
        vector: row
            .embedding
            .as_ref()
            .filter(|e| Some(e.model.as_str()) == model)
            .map(|e| e.vector.clone()),
    }
}
