//! The in-process event bus: live run events for SSE streams.
//!
//! Persisted events (with a `seq`) are the source of truth and can always be
//! re-read from the store; the bus only adds immediacy and the text deltas,
//! which are never persisted. A subscriber that misses a message (lagging or
//! subscribing late) re-reads the store, so nothing is lost.

use roster_core::event::RunEvent;
use roster_core::RunId;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Clone, Debug)]
pub struct LiveEvent {
    /// `Some` for persisted events, `None` for deltas.
    pub seq: Option<i64>,
    pub event: RunEvent,
}

#[derive(Default)]
pub(crate) struct Bus {
    channels: Mutex<HashMap<RunId, broadcast::Sender<LiveEvent>>>,
}

/// Per-run buffer. A subscriber that falls further behind re-reads the
/// store, so this only needs to cover bursts; each run allocates it.
const CAPACITY: usize = 64;

impl Bus {
    /// Opens the run's channel; done when the run is accepted or recovered.
    pub(crate) fn open(&self, run: &RunId) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(run.clone())
            .or_insert_with(|| broadcast::channel(CAPACITY).0);
    }

    /// `None` when the run is not live in this process (finished, or owned by
    /// another node): the caller then reads the store.
    pub(crate) fn subscribe(&self, run: &RunId) -> Option<broadcast::Receiver<LiveEvent>> {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.get(run).map(broadcast::Sender::subscribe)
    }

    pub(crate) fn publish(&self, run: &RunId, event: LiveEvent) {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = channels.get(run) {
            let _ = sender.send(event);
        }
    }

    /// Drops the run's channel once it has finished; receivers see it closed
    /// and fall back to the store, where the final event already is.
    pub(crate) fn close(&self, run: &RunId) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.remove(run);
    }

    /// Drops every channel (the runtime is stopping); receivers fall back to
    /// the store.
    pub(crate) fn close_all(&self) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
