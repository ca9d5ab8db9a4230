//! Reading a Server-Sent Events response one event at a time, with an idle
//! timeout between chunks.
//!
//! Owns only the framing and the timing. Must never interpret event payloads:
//! each provider's `stream` module does that.

use crate::error::ProviderError;
use crate::error::{map_transport, timed_out};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::Duration;

pub(crate) struct SseReader {
    events: BoxStream<'static, Result<Event, EventStreamError<reqwest::Error>>>,
    idle: Duration,
}

impl SseReader {
    pub(crate) fn new(response: reqwest::Response, idle: Duration) -> Self {
        Self {
            events: response.bytes_stream().eventsource().boxed(),
            idle,
        }
    }

    /// The next event; `Ok(None)` when the body ended cleanly. A body that
    /// stays silent longer than the idle timeout is a `Timeout`; a body cut
    /// by the network is `Transient`.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, ProviderError> {
        match tokio::time::timeout(self.idle, self.events.next()).await {
            Err(_) => Err(timed_out(self.idle)),
            Ok(None) => Ok(None),
            Ok(Some(Ok(event))) => Ok(Some(event)),
            Ok(Some(Err(EventStreamError::Transport(e)))) => Err(map_transport(e)),
            Ok(Some(Err(e))) => Err(ProviderError::invalid(format!(
                "malformed event stream: {e}"
            ))),
        }
    }
}
