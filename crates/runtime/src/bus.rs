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

/// The text a live run's model call has streamed so far, as a subscriber
/// joining now needs it to render the reply from its start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveText {
    /// The newest persisted event published before these deltas.
    pub after_seq: i64,
    pub deltas: Vec<String>,
}

struct Channel {
    sender: broadcast::Sender<LiveEvent>,
    text: LiveText,
}

#[derive(Default)]
pub(crate) struct Bus {
    channels: Mutex<HashMap<RunId, Channel>>,
}

/// Per-run buffer. A subscriber that falls further behind re-reads the
/// store, so this only needs to cover bursts; each run allocates it.
const CAPACITY: usize = 64;

impl Bus {
    /// Opens the run's channel; done when the run is accepted or recovered.
    pub(crate) fn open(&self, run: &RunId) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.entry(run.clone()).or_insert_with(|| Channel {
            sender: broadcast::channel(CAPACITY).0,
            text: LiveText::default(),
        });
    }

    /// `None` when the run is not live in this process (finished, or owned by
    /// another node): the caller then reads the store.
    pub(crate) fn subscribe(&self, run: &RunId) -> Option<broadcast::Receiver<LiveEvent>> {
        self.subscribe_with_text(run).map(|(rx, _)| rx)
    }

    /// A subscription and, taken under the same lock (so no delta falls
    /// between them), the text streamed so far by the call in flight.
    pub(crate) fn subscribe_with_text(
        &self,
        run: &RunId,
    ) -> Option<(broadcast::Receiver<LiveEvent>, LiveText)> {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .get(run)
            .map(|c| (c.sender.subscribe(), c.text.clone()))
    }

    pub(crate) fn publish(&self, run: &RunId, event: LiveEvent) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get_mut(run) {
            let text = &mut channel.text;
            match (&event.event, event.seq) {
                (RunEvent::TextDelta { delta, .. }, _) => text.deltas.push(delta.clone()),
                (RunEvent::TextReset { .. }, _) => text.deltas.clear(),
                (_, Some(seq)) => {
                    // A persisted reply carries its whole text.
                    if matches!(event.event, RunEvent::Item { .. }) {
                        text.deltas.clear();
                    }
                    text.after_seq = text.after_seq.max(seq);
                }
                _ => {}
            }
            let _ = channel.sender.send(event);
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
