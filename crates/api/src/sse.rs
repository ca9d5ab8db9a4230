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
    use futures::StreamExt;
    let events =
        event_stream(state, tenant, run, after).map(|(seq, event)| Ok(sse_event(seq, &event)));
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A run's events after `after`: the persisted ones (with their `seq`),
/// then live ones (deltas without a `seq`), ending when the run finishes.
/// Every surface that streams a run renders this one stream.
pub(crate) fn event_stream(
    state: AppState,
    tenant: TenantId,
    run: RunId,
    after: i64,
) -> impl Stream<Item = (Option<i64>, RunEvent)> {
    // Subscribe before replaying so nothing falls between the two, and now
    // rather than when the body is first polled: a run submitted just before
    // may already be streaming text deltas by then, and those are live only.
    let (mut live, mut streamed) = match state.runtime.subscribe_with_text(&run) {
        Some((rx, text)) => (Some(rx), Some(text)),
        None => (None, None),
    };
    let stream = async_stream::stream! {
        let mut last = after;
        // Set once the run is known to have finished: what is left in the
        // store is all there will ever be.
        let mut finished = false;
        'outer: loop {
            let events = match state.store.list_events(&tenant, &run, last, 500).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(run = %run, error = %e, "cannot read run events");
                    break;
                }
            };
            let page_full = events.len() == 500;
            // A `run_finished` ends the stream unless events follow it: a
            // failed run that was retried goes on in the same stream.
            let mut ended = false;
            for e in events {
                last = e.seq;
                ended = matches!(e.event, RunEvent::RunFinished { .. });
                yield (Some(e.seq), named(e.event, &run));
            }
            if page_full {
                continue;
            }
            if ended {
                match state.store.get_run(&tenant, &run).await {
                    Ok(Some(current)) if !current.status.is_finished() => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(run = %run, error = %e, "cannot read the run");
                        break;
                    }
                }
            }
            if finished {
                // Resumed after the run's last event (`Last-Event-ID`): end
                // the stream rather than poll a run that will never change.
                break;
            }
            match live.as_mut() {
                // Not live in this process: poll the store. A run's final
                // status and its `run_finished` event commit together, so
                // once the status says finished one more read sees the rest.
                None => match state.store.get_run(&tenant, &run).await {
                    Ok(Some(current)) if current.status.is_finished() => finished = true,
                    Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(250)).await,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(run = %run, error = %e, "cannot read the run");
                        break;
                    }
                },
                Some(rx) => {
                // Joined while a reply streams: its text so far, unless the
                // store already had the reply (its event carries the text).
                if let Some(text) = streamed.take().filter(|t| t.after_seq == last) {
                    for delta in text.deltas {
                        yield (None, RunEvent::TextDelta { step: 0, delta });
                    }
                }
                loop {
                    let received = match tokio::time::timeout(QUIET_CHECK, rx.recv()).await {
                        Ok(received) => received,
                        // Quiet for a while: make sure the run is still going
                        // (a channel can outlive a run that ended elsewhere).
                        Err(_) => match state.store.get_run(&tenant, &run).await {
                            Ok(Some(current)) if !current.status.is_finished() => continue,
                            Ok(Some(_)) => {
                                finished = true;
                                break;
                            }
                            Ok(None) => break 'outer,
                            Err(e) => {
                                tracing::error!(run = %run, error = %e, "cannot read the run");
                                break 'outer;
                            }
                        },
                    };
                    match received {
                        Ok(ev) => match ev.seq {
                            None => yield (None, ev.event),
                            Some(seq) if seq <= last => continue,
                            Some(seq) if seq == last + 1 => {
                                last = seq;
                                let is_last = matches!(ev.event, RunEvent::RunFinished { .. });
                                yield (Some(seq), ev.event);
                                if is_last {
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
                }
                }
            }
        }
    };
    stream
}

/// Events stored before `run_queued` named its run get the name here, so
/// the first event of every stream says which run it is.
fn named(event: RunEvent, run: &RunId) -> RunEvent {
    match event {
        RunEvent::RunQueued { run_id: None } => RunEvent::RunQueued {
            run_id: Some(run.clone()),
        },
        other => other,
    }
}

/// How long a live stream may stay silent before the run's status is checked
/// in the store.
const QUIET_CHECK: Duration = Duration::from_secs(5);

fn sse_event(seq: Option<i64>, event: &RunEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    let sse = Event::default().event(event.name()).data(data);
    match seq {
        Some(seq) => sse.id(seq.to_string()),
        None => sse,
    }
}
