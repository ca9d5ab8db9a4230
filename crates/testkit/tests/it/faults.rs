//! Fault scripting of the fake model server seen through a real HTTP client:
//! native error bodies, retry-after, queue exhaustion, raw bodies, empty
//! answers, cut streams, delays and hangs.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use roster_testkit::{FakeModelServer, Reply, NO_REPLY_LEFT};
use serde_json::{json, Value};

fn openai_url(s: &FakeModelServer) -> String {
    format!("{}/chat/completions", s.openai_base_url())
}

fn anthropic_url(s: &FakeModelServer) -> String {
    format!("{}/v1/messages", s.anthropic_base_url())
}

async fn post(url: String, stream: bool) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(url)
        .json(&json!({"model": "m", "messages": [], "max_tokens": 10, "stream": stream}))
        .send()
        .await
}

#[tokio::test]
async fn errors_carry_status_body_and_retry_after() {
    let server = FakeModelServer::start().await;
    server.push(Reply::error(429, "slow down").retry_after(7));
    let resp = post(openai_url(&server), false).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "slow down", "type": "rate_limit_exceeded",
                         "param": null, "code": "rate_limit_exceeded"}})
    );

    server.push(Reply::error(529, "busy").retry_after(2));
    let resp = post(anthropic_url(&server), true).await.unwrap();
    assert_eq!(resp.status(), 529);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    );

    server.push(Reply::error(401, "bad key"));
    let body: Value = post(openai_url(&server), false)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn context_overflow_is_native() {
    let server = FakeModelServer::start().await;
    server.push_all([Reply::context_overflow(), Reply::context_overflow()]);
    let resp = post(openai_url(&server), false).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    let resp = post(anthropic_url(&server), false).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "prompt is too long: 250000 tokens > 200000 maximum"
    );
}

#[tokio::test]
async fn exhausted_queue_answers_500() {
    let server = FakeModelServer::start().await;
    let resp = post(openai_url(&server), false).await.unwrap();
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], NO_REPLY_LEFT);
    assert_eq!(body["error"]["type"], "server_error");
    let resp = post(anthropic_url(&server), false).await.unwrap();
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(body["error"]["message"], NO_REPLY_LEFT);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn raw_and_empty_replies() {
    let server = FakeModelServer::start().await;
    server.push(Reply::raw(502, "text/html", "<html>Bad Gateway</html>"));
    let resp = post(openai_url(&server), false).await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["content-type"], "text/html");
    assert_eq!(resp.text().await.unwrap(), "<html>Bad Gateway</html>");

    server.push_all([Reply::empty_choices(), Reply::empty_choices()]);
    let body: Value = post(openai_url(&server), false)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"], json!([]));
    let body: Value = post(anthropic_url(&server), false)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["content"], json!([]));
    assert_eq!(body["stop_reason"], "end_turn");
}

#[tokio::test]
async fn cut_stream_closes_without_terminator() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("a fairly long answer in many words").cut_stream());
    let resp = post(openai_url(&server), true).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let mut resp = resp;
    let failed = loop {
        match resp.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(failed, "the body must end in an error, not cleanly");
    let text = String::from_utf8(got).unwrap();
    assert!(
        text.starts_with("data: "),
        "some events arrive first: {text:?}"
    );
    assert!(!text.contains("[DONE]"));

    server.push(Reply::text("whatever").cut_stream());
    let resp = post(anthropic_url(&server), true).await.unwrap();
    let text = resp.text().await;
    assert!(text.is_err(), "cut Anthropic stream must fail: {text:?}");

    server.push(Reply::text("whatever").cut_stream());
    let resp = post(anthropic_url(&server), false).await.unwrap();
    assert!(resp.json::<Value>().await.is_err());
}

#[tokio::test]
async fn delayed_and_hanging_replies() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("late").delayed(Duration::from_millis(200)));
    let start = Instant::now();
    let resp = post(openai_url(&server), false).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.status(), 200);

    server.push(Reply::text("never").hang());
    let result = reqwest::Client::new()
        .post(anthropic_url(&server))
        .timeout(Duration::from_millis(300))
        .json(&json!({"model": "m", "messages": []}))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(server.pending(), 0);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn an_outage_answers_its_status_then_refuses_then_ends() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("back"));
    server.fail_with(503);
    for _ in 0..3 {
        let resp = post(openai_url(&server), false).await.unwrap();
        assert_eq!(resp.status(), 503);
    }
    assert_eq!(server.outage_answers(), 3);
    assert_eq!(server.pending(), 1, "an outage consumes no scripted reply");

    // A client that keeps its connection alive is cut off too.
    let client = reqwest::Client::new();
    let body = json!({"model": "m", "messages": [], "max_tokens": 10});
    server.refuse_connections().await;
    let refused = client.post(openai_url(&server)).json(&body).send().await;
    let error = refused.expect_err("no listener");
    assert!(error.is_connect() || error.is_request(), "{error:?}");

    server.end_outage().await;
    let resp = client
        .post(openai_url(&server))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "back");
    assert_eq!(server.outage_answers(), 3);
}
