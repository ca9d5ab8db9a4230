//! The wire format of the test kit's fake `POST /v1/embeddings`, checked
//! with a plain HTTP client: what a real OpenAI client would receive.
//!
//! Owns the format checks (float and base64 bodies, usage, validation
//! errors). Must never depend on roster-embed's client: it would hide
//! mistakes shared by both sides.

use base64::Engine;
use roster_testkit::{fake_embedding, FakeModelServer, DEFAULT_EMBEDDING_DIMENSIONS};
use serde_json::{json, Value};

async fn post(server: &FakeModelServer, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/embeddings", server.openai_base_url()))
        .json(&body)
        .send()
        .await
        .expect("fake server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn answers_in_the_openai_float_format() {
    let server = FakeModelServer::start().await;
    let (status, body) = post(
        &server,
        json!({"model": "text-embedding-3-small", "input": ["hello world", "goodbye"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    for (i, text) in ["hello world", "goodbye"].iter().enumerate() {
        assert_eq!(data[i]["object"], "embedding");
        assert_eq!(data[i]["index"], i);
        let v: Vec<f32> = serde_json::from_value(data[i]["embedding"].clone()).expect("floats");
        assert_eq!(v, fake_embedding(text, DEFAULT_EMBEDDING_DIMENSIONS));
    }

    let (status, body) = post(
        &server,
        json!({"model": "m", "input": "one", "dimensions": 8}),
    )
    .await;
    assert_eq!(status, 200);
    let v: Vec<f32> = serde_json::from_value(body["data"][0]["embedding"].clone()).expect("v");
    assert_eq!(v, fake_embedding("one", 8));
}

#[tokio::test]
async fn base64_is_little_endian_f32() {
    let server = FakeModelServer::start().await;
    let (status, body) = post(
        &server,
        json!({"model": "m", "input": "the cat", "dimensions": 12, "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200);
    let encoded = body["data"][0]["embedding"]
        .as_str()
        .expect("base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("valid base64");
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(v, fake_embedding("the cat", 12));
}

#[tokio::test]
async fn rejects_what_a_real_server_rejects() {
    let server = FakeModelServer::start().await;
    for body in [
        json!({"input": "no model"}),
        json!({"model": "m"}),
        json!({"model": "m", "input": []}),
        json!({"model": "m", "input": ""}),
        json!({"model": "m", "input": [1, 2, 3]}),
        json!({"model": "m", "input": [[1, 2], [3]]}),
        json!({"model": "m", "input": "x", "dimensions": 0}),
        json!({"model": "m", "input": "x", "encoding_format": "int8"}),
    ] {
        let (status, answer) = post(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{body}");
        assert!(answer["error"]["message"].is_string());
    }
    assert_eq!(server.embedding_request_count(), 8);
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn scripted_failures_use_the_openai_error_format() {
    let server = FakeModelServer::start().await;
    server.embedding_failures_with_retry_after(1, 429, 3);
    let response = reqwest::Client::new()
        .post(format!("{}/embeddings", server.openai_base_url()))
        .json(&json!({"model": "m", "input": "x"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(response.headers()["retry-after-ms"], "3000");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let (status, _) = post(&server, json!({"model": "m", "input": "x"})).await;
    assert_eq!(status, 200, "only the scripted request failed");
}
