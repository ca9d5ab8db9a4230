//! Live events: a subscriber sees the model's text as it streams and every
//! persisted event in order, the same ones the store keeps.

use crate::common;

use common::tools::ProbeTool;
use common::*;
use roster_core::event::RunEvent;
use roster_core::run::RunStatus;
use roster_runtime::LiveEvent;
use roster_testkit::{FakeModelServer, Reply};
use std::time::Duration;

on_both_backends!(a_subscriber_sees_deltas_and_persisted_events_in_order);

async fn a_subscriber_sees_deltas_and_persisted_events_in_order(db: Db) {
    let server = FakeModelServer::start().await;
    server.push_all([
        // Holds the session until cancelled, so the run under test is still
        // queued when the subscriber arrives.
        Reply::text("never").hang(),
        Reply::tool_call("c1", "probe", r#"{"x":"y"}"#),
        Reply::text("Hello streaming world, word by word"),
    ]);
    let provider = openai(&server);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["probe"])).await;
    let rt = runtime(
        store.clone(),
        provider,
        vec![ProbeTool::new("probe", false)],
    );

    let blocker = submit(&rt, &fx, "hold on").await;
    let run = submit(&rt, &fx, "stream to me").await;
    let mut live = rt.subscribe(&run.id).expect("a queued run is live");
    wait_until("the first run is at the model", || {
        server.request_count() == 1
    })
    .await;
    rt.cancel(&fx.tenant, &blocker.id).await.expect("cancel");

    let mut seen: Vec<LiveEvent> = Vec::new();
    loop {
        let event = tokio::time::timeout(PATIENCE, live.recv())
            .await
            .expect("events keep coming")
            .expect("no event is missed");
        let last = matches!(event.event, RunEvent::RunFinished { .. });
        seen.push(event);
        if last {
            break;
        }
    }
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;

    let deltas: Vec<&str> = seen
        .iter()
        .filter_map(|e| match &e.event {
            RunEvent::TextDelta { delta, step } => {
                assert_eq!(e.seq, None, "deltas are not persisted");
                assert_eq!(*step, 3, "the text comes from the third step");
                Some(delta.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(deltas.len() > 1, "the text was not streamed: {deltas:?}");
    assert_eq!(deltas.concat(), "Hello streaming world, word by word");

    let persisted: Vec<(i64, &RunEvent)> = seen
        .iter()
        .filter_map(|e| e.seq.map(|seq| (seq, &e.event)))
        .collect();
    assert!(
        persisted.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "seq must increase by one: {persisted:?}"
    );
    let names: Vec<&str> = persisted.iter().map(|(_, e)| e.name()).collect();
    assert_eq!(
        names,
        [
            "run_started",
            "item",
            "tool_call",
            "item",
            "tool_result",
            "item",
            "item",
            "run_finished"
        ]
    );
    // Text deltas arrive before the message that holds the whole text.
    let last_delta = seen
        .iter()
        .rposition(|e| matches!(e.event, RunEvent::TextDelta { .. }))
        .expect("deltas");
    let final_item = seen
        .iter()
        .rposition(|e| matches!(e.event, RunEvent::Item { .. }))
        .expect("items");
    assert!(last_delta < final_item);

    // The live stream is the stored one (after `run_queued`, which came first).
    let stored = store
        .list_events(&fx.tenant, &run.id, 0, 100)
        .await
        .expect("events");
    assert_eq!(
        stored[0].event,
        RunEvent::RunQueued {
            run_id: Some(run.id.clone())
        }
    );
    let stored: Vec<(i64, &RunEvent)> = stored[1..].iter().map(|e| (e.seq, &e.event)).collect();
    assert_eq!(stored, persisted);
    // Once finished the run is no longer live: late readers use the store.
    tokio::time::timeout(Duration::from_secs(5), async {
        while rt.subscribe(&run.id).is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the channel closes");
}
