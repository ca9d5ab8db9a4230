//! Happy-path wire checks of the fake model server with a real HTTP client:
//! OpenAI and Anthropic JSON and SSE replies, and request recording.
#![allow(clippy::unwrap_used)]

use roster_testkit::{FakeModelServer, Protocol, Reply};
use serde_json::{json, Value};

async fn post(url: String, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("x-api-key", "test-key")
        .header("anthropic-version", "2023-06-01")
        .header("authorization", "Bearer test-key")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Splits an SSE body into (event name, data) pairs.
fn sse(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

fn openai_request(stream: bool) -> Value {
    json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}],
           "stream": stream, "stream_options": {"include_usage": true}})
}

#[tokio::test]
async fn openai_json_tool_call() {
    let server = FakeModelServer::start().await;
    server.push(
        Reply::tool_call("call_1", "get_weather", r#"{"city":"Paris"}"#)
            .and_tool_call("call_2", "broken", "{not json")
            .with_usage(42, 7),
    );
    let url = format!("{}/chat/completions", server.openai_base_url());
    let resp = post(url, json!({"model": "gpt-test", "messages": []})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_1");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(calls[1]["function"]["arguments"], "{not json");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49})
    );

    server.push(Reply::text("plain answer"));
    let url = format!("{}/chat/completions", server.openai_base_url());
    let body: Value = post(url, openai_request(false)).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "plain answer");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
}

#[tokio::test]
async fn openai_stream_reassembles() {
    let server = FakeModelServer::start().await;
    let args = r#"{"city":"Paris","days":3}"#;
    server.push(
        Reply::tool_call("call_1", "get_weather", args)
            .with_text("Let me check the weather")
            .with_usage(11, 6),
    );
    let url = format!("{}/chat/completions", server.openai_base_url());
    let resp = post(url, openai_request(true)).await;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let (mut text, mut arguments, mut finish, mut text_chunks, mut arg_chunks) =
        (String::new(), String::new(), None, 0, 0);
    let mut name = None;
    for c in &chunks {
        let Some(choice) = c["choices"].get(0) else {
            continue;
        };
        if let Some(t) = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            text.push_str(t);
            text_chunks += 1;
        }
        if let Some(call) = choice["delta"]["tool_calls"].get(0) {
            assert_eq!(call["index"], 0);
            if let Some(n) = call["function"]["name"].as_str() {
                name = Some(n.to_owned());
                assert_eq!(call["id"], "call_1");
            }
            let piece = call["function"]["arguments"].as_str().unwrap();
            if !piece.is_empty() {
                arg_chunks += 1;
            }
            arguments.push_str(piece);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_owned());
        }
    }
    assert_eq!(text, "Let me check the weather");
    assert!(text_chunks >= 2);
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(arguments, args);
    assert!(arg_chunks >= 2);
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 11);
    assert_eq!(last["usage"]["total_tokens"], 17);
}

#[tokio::test]
async fn anthropic_json_reply() {
    let server = FakeModelServer::start().await;
    server.push(
        Reply::tool_call("toolu_1", "get_weather", r#"{"city":"Paris"}"#)
            .and_tool_call("toolu_2", "broken", "{not json")
            .with_text("Checking."),
    );
    let url = format!("{}/v1/messages", server.anthropic_base_url());
    let req = json!({"model": "claude-test", "max_tokens": 100, "messages": []});
    let body: Value = post(url.clone(), req.clone()).await.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["content"][0],
        json!({"type": "text", "text": "Checking."})
    );
    assert_eq!(
        body["content"][1],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(body["content"][2]["input"], "{not json");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 10, "output_tokens": 5})
    );

    server.push(Reply::text("Hello there"));
    let body: Value = post(url, req).await.json().await.unwrap();
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Hello there"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
}

#[tokio::test]
async fn anthropic_stream_reassembles() {
    let server = FakeModelServer::start().await;
    let args = r#"{"city":"Paris","days":3}"#;
    server.push(Reply::tool_call("toolu_1", "get_weather", args).with_text("Let me check"));
    let url = format!("{}/v1/messages", server.anthropic_base_url());
    let req = json!({"model": "claude-test", "max_tokens": 100, "messages": [], "stream": true});
    let resp = post(url, req).await;
    assert_eq!(resp.status(), 200);
    let events = sse(&resp.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(names[..2], ["message_start", "ping"]);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    let (mut text, mut json_buf, mut blocks) = (String::new(), String::new(), Vec::new());
    for (name, data) in &events {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"].as_str(), name.as_deref());
        match v["type"].as_str().unwrap() {
            "content_block_start" => blocks.push(v["content_block"].clone()),
            "content_block_delta" => match v["delta"]["type"].as_str().unwrap() {
                "text_delta" => text.push_str(v["delta"]["text"].as_str().unwrap()),
                _ => json_buf.push_str(v["delta"]["partial_json"].as_str().unwrap()),
            },
            "message_delta" => {
                assert_eq!(v["delta"]["stop_reason"], "tool_use");
                assert_eq!(v["usage"]["output_tokens"], 5);
            }
            "message_start" => assert_eq!(v["message"]["usage"]["input_tokens"], 10),
            _ => {}
        }
    }
    assert_eq!(text, "Let me check");
    assert_eq!(json_buf, args);
    assert_eq!(blocks[1]["type"], "tool_use");
    assert_eq!(blocks[1]["id"], "toolu_1");
    assert_eq!(blocks[1]["input"], json!({}));
}

#[tokio::test]
async fn requests_are_recorded() {
    let server = FakeModelServer::start().await;
    server.push_all([Reply::text("one"), Reply::text("two")]);
    assert_eq!(server.pending(), 2);
    let base = server.anthropic_base_url();
    post(
        format!("{base}/v1/messages"),
        json!({"model": "m", "messages": [1]}),
    )
    .await;
    let bad = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.openai_base_url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let requests = server.requests();
    assert_eq!(server.request_count(), 2);
    assert_eq!(requests[0].protocol, Protocol::Anthropic);
    assert_eq!(requests[0].path, "/v1/messages");
    assert_eq!(requests[0].header("X-Api-Key"), Some("test-key"));
    assert_eq!(requests[0].body["messages"], json!([1]));
    assert_eq!(requests[1].protocol, Protocol::OpenAi);
    assert_eq!(requests[1].path, "/v1/chat/completions");
    assert_eq!(requests[1].body, Value::Null);
    // The unparsable request did not consume a reply.
    assert_eq!(server.pending(), 1);
    assert_eq!(server.last_request().unwrap().protocol, Protocol::OpenAi);
}
