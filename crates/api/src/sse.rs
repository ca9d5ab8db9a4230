//! The SSE stream of a run: persisted events replayed from the store, then
//! live ones from the runtime's bus; text deltas only live. Each persisted
//! event carries its `seq` as the SSE id, so a client reconnecting with
//! `Last-Event-ID` resumes where it left off.

use crate::AppState;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use roster_core::event::RunEvent;
use roster_core::{RunId, TenantId};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub fn run_events(
    state: AppState,
    tenant: TenantId,
    run: RunId,
    after: i64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = async_stream::stream! {
        // Subscribe before replaying so nothing falls between the two.
        let mut live = state.runtime.subscribe(&run);
        let mut last = after;
        'outer: loop {
            let events = match state.store.list_events(&tenant, &run, last, 500).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(run = %run, error = %e, "cannot read run events");
                    break;
                }
            };
            let page_full = events.len() == 500;
            for e in events {
                last = e.seq;
                let finished = matches!(e.event, RunEvent::RunFinished { .. });
                yield Ok(sse_event(Some(e.seq), &e.event));
                if finished {
                    break 'outer;
                }
            }
            if page_full {
                continue;
            }
            match live.as_mut() {
                None => tokio::time::sleep(Duration::from_millis(250)).await,
                Some(rx) => loop {
                    match rx.recv().await {
                        Ok(ev) => match ev.seq {
                            None => yield Ok(sse_event(None, &ev.event)),
                            Some(seq) if seq <= last => continue,
                            Some(seq) if seq == last + 1 => {
                                last = seq;
                                let finished = matches!(ev.event, RunEvent::RunFinished { .. });
                                yield Ok(sse_event(Some(seq), &ev.event));
                                if finished {
                                    break 'outer;
                                }
                            }
                            // A gap: the store has what we missed.
                            Some(_) => break,
                        },
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => {
                            live = None;
                            break;
                        }
                    }
                },
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn sse_event(seq: Option<i64>, event: &RunEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    let sse = Event::default().event(event.name()).data(data);
    match seq {
        Some(seq) => sse.id(seq.to_string()),
        None => sse,
    }
}
