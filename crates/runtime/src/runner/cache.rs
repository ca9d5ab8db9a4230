//! What a run reads once and then keeps up to date itself, so a turn does
//! not re-read the store for state it wrote: the session's context window.
//! (The process-wide caches are in `crate::caches`.)

use roster_core::item::Item;
use std::sync::Mutex;

/// The run's view of its session's tail. Only this run appends to the
/// session while it is active (one active run per session), so adding the
/// items it commits keeps the view exact.
#[derive(Default)]
pub(crate) struct Window {
    items: Mutex<Option<Vec<Item>>>,
}

impl Window {
    pub(crate) fn items(&self) -> Option<Vec<Item>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_items(&self, items: Vec<Item>) {
        *self.items.lock().unwrap_or_else(|p| p.into_inner()) = Some(items);
    }

    /// Adds committed items, keeping `seq` order and at most `limit` items.
    pub(crate) fn append(&self, committed: &[Item], limit: usize) {
        let mut guard = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(items) = guard.as_mut() {
            items.extend_from_slice(committed);
            items.sort_by_key(|i| i.seq);
            if items.len() > limit {
                items.drain(..items.len() - limit);
            }
        }
    }
}
