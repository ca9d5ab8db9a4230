//! `conversation_search`: the full history of a session, found by words,
//! however long ago it left the context. Items reach the index when their
//! run finishes.

use crate::indexer::{ITEM_KEY_PREFIX, SESSION_SCOPE_PREFIX};
use crate::search::MAX_LIMIT;
use crate::{MemoryError, MemoryService};
use roster_core::item::Item;
use roster_core::{SessionId, TenantId};
use roster_index::Query;

impl MemoryService {
    /// The session's items that best match `query`, best first.
    pub async fn search_conversation(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Item>, MemoryError> {
        crate::search::check_query(query)?;
        let limit = limit.clamp(1, MAX_LIMIT);
        // Runs that just finished may not be indexed yet: catch up first.
        let head = self.store.search_log_head().await?;
        self.wait_indexed(head).await;
        let request = Query {
            tenant: tenant.to_string(),
            scopes: vec![format!("{SESSION_SCOPE_PREFIX}{session}")],
            text: query.to_owned(),
            vector: None,
            limit,
            candidates: (limit * 4).max(40),
        };
        // On the calling thread, for the reason given in `search.rs`.
        let hits = self.index().text_search(&request)?;
        let prefix = format!("{ITEM_KEY_PREFIX}{session}:");
        let seqs: Vec<i64> = hits
            .iter()
            .filter_map(|h| h.key.strip_prefix(&prefix)?.parse().ok())
            .collect();
        let mut items = self.store.items_by_seq(tenant, session, &seqs).await?;
        // Best first, as the index ranked them.
        items.sort_by_key(|item| seqs.iter().position(|s| *s == item.seq));
        Ok(items)
    }
}
