//! Server-sent events: `stream: true` on a message, and the replayable
//! `/v1/runs/{id}/events` with `Last-Event-ID`.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, Sse, TestApp};
use serde_json::json;
use std::time::Duration;

fn persisted(events: &[Sse]) -> Vec<&Sse> {
    events.iter().filter(|e| e.event != "text_delta").collect()
}

fn names<'a>(events: impl IntoIterator<Item = &'a Sse>) -> Vec<&'a str> {
    events.into_iter().map(|e| e.event.as_str()).collect()
}

/// An agent with the memory tools and a block, whose session is scripted to
/// call `memory_append` once and then answer in several words.
async fn scripted(app: &TestApp) -> String {
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "streamer", "model": "openai/m", "tools": ["memory_append"],
            "memory_blocks": [{"label": "facts"}]
        }))
        .await;
    app.fake.push_all([
        Reply::tool_call(
            "call_a",
            "memory_append",
            r#"{"label":"facts","content":"x"}"#,
        ),
        Reply::text("The answer is here and it is long"),
    ]);
    admin.session("streamer").await
}

#[tokio::test]
async fn stream_sends_every_event_in_order() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = scripted(&app).await;
    let builder = admin
        .request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{session}/messages"),
        )
        .json(&json!({"content": "go", "stream": true}));
    let (status, events) = admin.sse(builder).await;
    assert_eq!(status, 200);

    let kept = persisted(&events);
    assert_eq!(
        names(kept.iter().copied()),
        [
            "run_queued",
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
    let ids: Vec<i64> = kept
        .iter()
        .map(|e| e.id.expect("persisted events have ids"))
        .collect();
    assert_eq!(
        ids,
        (1..=9).collect::<Vec<_>>(),
        "ids strictly increasing from 1"
    );
    assert_eq!(kept[2].data["item"]["type"], "user_message");
    assert_eq!(kept[3].data["name"], "memory_append");
    assert_eq!(kept[3].data["call_id"], "call_a");
    assert_eq!(kept[4].data["item"]["tool_calls"][0]["id"], "call_a");
    assert_eq!(kept[5].data["is_error"], false);
    assert_eq!(kept[6].data["item"]["type"], "tool_result");
    assert_eq!(
        kept[7].data["item"]["text"],
        "The answer is here and it is long"
    );
    assert_eq!(kept[8].data["status"], "completed");
    assert_eq!(kept[8].data["output"], "The answer is here and it is long");
    assert_eq!(events.last().unwrap().event, "run_finished");
    for e in &events {
        assert_eq!(e.data["type"], e.event.as_str(), "data carries its type");
    }

    // The deltas of the final answer, live only, between the tool result and
    // the final item, spell the whole text.
    let deltas: Vec<&Sse> = events.iter().filter(|e| e.event == "text_delta").collect();
    assert!(
        deltas.len() > 1,
        "the fake server streams word by word: {events:#?}"
    );
    assert!(deltas.iter().all(|d| d.id.is_none()));
    let text: String = deltas
        .iter()
        .map(|d| d.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "The answer is here and it is long");
    let position = |pred: &dyn Fn(&Sse) -> bool| events.iter().position(pred).unwrap();
    let first_delta = position(&|e| e.event == "text_delta");
    let last_delta = events
        .iter()
        .rposition(|e| e.event == "text_delta")
        .unwrap();
    assert!(first_delta > position(&|e| e.id == Some(7)));
    assert!(last_delta < position(&|e| e.id == Some(8)));
}

#[tokio::test]
async fn finished_run_events_replay_from_the_start_or_after_last_event_id() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = scripted(&app).await;
    let builder = admin
        .request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{session}/messages"),
        )
        .json(&json!({"content": "go", "stream": true}));
    let (_, streamed) = admin.sse(builder).await;
    let streamed: Vec<(String, Option<i64>, serde_json::Value)> = persisted(&streamed)
        .into_iter()
        .map(|e| (e.event.clone(), e.id, e.data.clone()))
        .collect();
    let run = app.admin().items(&session).await[0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, replayed) = admin.events(&run, None).await;
    assert_eq!(status, 200);
    let replayed: Vec<(String, Option<i64>, serde_json::Value)> = replayed
        .into_iter()
        .map(|e| (e.event, e.id, e.data))
        .collect();
    assert_eq!(replayed, streamed, "the replay is the persisted stream");

    let (_, after) = admin.events(&run, Some("5")).await;
    let ids: Vec<i64> = after.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids, [6, 7, 8, 9]);
    assert_eq!(after[0].data, streamed[5].2);
    let (_, after) = admin.events(&run, Some(" 0 ")).await;
    assert_eq!(after.len(), 9);
}

#[tokio::test]
async fn resuming_after_the_last_event_of_a_finished_run_ends_at_once() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("done"));
    let run = admin.say(&session, "hi").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, all) = admin.events(&run, None).await;
    let last = all.last().unwrap().id.unwrap();
    // A client (an EventSource, say) reconnecting after `run_finished` must
    // not be left hanging on a stream that will never say anything again.
    for resume in [last, last + 100] {
        let resume = resume.to_string();
        let request = admin.events(&run, Some(&resume));
        let (status, events) = tokio::time::timeout(Duration::from_secs(5), request)
            .await
            .unwrap_or_else(|_| panic!("stream after {resume} did not end"));
        assert_eq!(status, 200);
        assert!(events.is_empty(), "{events:#?}");
    }
}

#[tokio::test]
async fn events_of_a_live_run_follow_it_to_the_end() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake
        .push(Reply::text("slow and steady").delayed(Duration::from_millis(300)));
    let accepted = admin
        .message(&session, json!({"content": "hi", "background": true}))
        .await;
    let run = accepted.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    let (status, events) = admin.events(&run, None).await;
    assert_eq!(status, 200);
    let kept = persisted(&events);
    assert_eq!(
        names(kept.iter().copied()),
        ["run_queued", "run_started", "item", "item", "run_finished"]
    );
    let ids: Vec<i64> = kept.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(kept[4].data["status"], "completed");
}

#[tokio::test]
async fn a_retried_streaming_message_replays_the_first_run() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("only once"));
    let stream = || {
        admin
            .request(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session}/messages"),
            )
            .header("idempotency-key", "s-1")
            .json(&json!({"content": "hi", "stream": true}))
    };
    let (_, first) = admin.sse(stream()).await;
    let (_, second) = admin.sse(stream()).await;
    let ids = |events: &[Sse]| -> Vec<i64> { events.iter().filter_map(|e| e.id).collect() };
    assert_eq!(ids(&first), ids(&second));
    assert_eq!(second.last().unwrap().data["output"], "only once");
    assert_eq!(app.fake.request_count(), 1);
}

/// The router retries a stream cut half way; text the failed attempt had
/// already streamed must not reach the client as if it were part of the
/// answer (the router documents that a streaming caller has to discard it).
#[tokio::test]
async fn deltas_of_a_failed_attempt_are_not_mixed_into_the_answer() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push_all([
        Reply::text("partial words that will be cut off here").cut_stream(),
        Reply::text("the whole answer"),
    ]);
    let builder = admin
        .request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{session}/messages"),
        )
        .json(&json!({"content": "go", "stream": true}));
    let (_, events) = admin.sse(builder).await;
    assert_eq!(events.last().unwrap().data["output"], "the whole answer");
    // Deltas as a client would assemble them; a `text_reset` (one way to
    // fix this) tells it to drop what it has of the step.
    let mut text = String::new();
    for e in &events {
        match e.event.as_str() {
            "text_delta" => text.push_str(e.data["delta"].as_str().unwrap()),
            "text_reset" => text.clear(),
            _ => {}
        }
    }
    assert_eq!(text, "the whole answer");
}
