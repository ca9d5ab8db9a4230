//! The OpenAI embedder against the test kit's fake `/v1/embeddings`:
//! dimension probe, batching, ordering, retries, error kinds, timeouts and
//! auth headers, all over real HTTP on 127.0.0.1.
//!
//! Owns the client's behaviour as a caller sees it. Must never reach a real
//! provider: every URL points at the fake server or a closed local port.

use std::time::{Duration, Instant};

use roster_embed::{
    build, cosine, EmbedError, Embedder, EmbedderConfig, OpenAiEmbedder, OpenAiOptions, RetryPolicy,
};
use roster_testkit::{fake_embedding, FakeModelServer, Reply};
use serde_json::json;

fn options(server: &FakeModelServer) -> OpenAiOptions {
    let mut o = OpenAiOptions::new("fake-embed");
    o.base_url = server.openai_base_url();
    o.dimensions = Some(16);
    o.timeout = Duration::from_secs(5);
    // Fast retries: the tests check that they happen, not how long they wait.
    o.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    };
    o
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("text number {i} about cats"))
        .collect()
}

fn assert_matches_fake(vectors: &[Vec<f32>], inputs: &[String], dims: usize) {
    assert_eq!(vectors.len(), inputs.len());
    for (v, text) in vectors.iter().zip(inputs) {
        let expected = fake_embedding(text, dims);
        assert_eq!(v.len(), dims);
        assert!((cosine(v, &expected) - 1.0).abs() < 1e-5, "{text}");
    }
}

#[tokio::test]
async fn probes_dimensions_once_when_not_configured() {
    let server = FakeModelServer::start().await;
    let mut o = options(&server);
    o.dimensions = None;
    let e = OpenAiEmbedder::connect(o).await.expect("connect");
    assert_eq!(e.dimensions(), 64);
    assert_eq!(e.id(), "openai/fake-embed");
    assert_eq!(server.embedding_request_count(), 1);
    let probe = &server.embedding_requests()[0];
    assert_eq!(probe.path, "/v1/embeddings");
    assert!(probe.body.get("dimensions").is_none());
    assert_eq!(probe.body["encoding_format"], "float");

    // Requested dimensions need no probe, and are sent with every request.
    let server = FakeModelServer::start().await;
    let e = OpenAiEmbedder::connect(options(&server))
        .await
        .expect("connect");
    assert_eq!((e.id(), e.dimensions()), ("openai/fake-embed@16", 16));
    assert_eq!(server.embedding_request_count(), 0);
    let inputs = texts(2);
    let v = e.embed(&inputs).await.expect("embed");
    assert_matches_fake(&v, &inputs, 16);
    assert_eq!(server.embedding_requests()[0].body["dimensions"], 16);
}

#[tokio::test]
async fn splits_by_max_batch_and_keeps_order() {
    let server = FakeModelServer::start().await;
    let mut o = options(&server);
    o.max_batch = 3;
    let e = OpenAiEmbedder::connect(o).await.expect("connect");
    assert_eq!(e.max_batch(), 3);
    server.embedding_reverse_order(true);
    let inputs = texts(7);
    let v = e.embed(&inputs).await.expect("embed");
    assert_matches_fake(&v, &inputs, 16);
    let sizes: Vec<usize> = server
        .embedding_requests()
        .iter()
        .map(|r| r.body["input"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    assert!(e.embed(&[]).await.expect("empty").is_empty());
    assert_eq!(server.embedding_request_count(), 3);
}

#[tokio::test]
async fn retries_rate_limits_and_server_errors_then_succeeds() {
    let server = FakeModelServer::start().await;
    let e = OpenAiEmbedder::connect(options(&server))
        .await
        .expect("connect");
    let inputs = texts(2);

    server.embedding_failures(2, 429);
    let v = e.embed(&inputs).await.expect("third attempt succeeds");
    assert_matches_fake(&v, &inputs, 16);
    assert_eq!(server.embedding_request_count(), 3);

    server.embedding_failures(1, 503);
    e.embed(&inputs).await.expect("second attempt succeeds");
    assert_eq!(server.embedding_request_count(), 5);

    // retry-after is waited for, not the 10 ms backoff.
    server.embedding_failures_with_retry_after(1, 429, 1);
    let started = Instant::now();
    e.embed(&inputs).await.expect("after the wait");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn persistent_failures_surface_as_their_kind() {
    let server = FakeModelServer::start().await;
    let e = OpenAiEmbedder::connect(options(&server))
        .await
        .expect("connect");
    let inputs = texts(1);

    server.embedding_failures(10, 429);
    let err = e.embed(&inputs).await.expect_err("rate limited");
    assert_eq!(err, EmbedError::RateLimited { retry_after: None });
    assert_eq!(server.embedding_request_count(), 4, "1 attempt + 3 retries");

    server.embedding_failures(10, 500);
    let err = e.embed(&inputs).await.expect_err("server error");
    assert!(
        matches!(err, EmbedError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "embedder_http");

    // A retry-after longer than the policy's max_delay fails at once.
    server.embedding_failures_with_retry_after(1, 429, 60);
    let before = server.embedding_request_count();
    let err = e.embed(&inputs).await.expect_err("too long to wait");
    assert_eq!(
        err,
        EmbedError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_eq!(server.embedding_request_count(), before + 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = FakeModelServer::start().await;
    let e = OpenAiEmbedder::connect(options(&server))
        .await
        .expect("connect");
    server.embedding_failures(1, 400);
    let err = e.embed(&texts(1)).await.expect_err("bad request");
    let EmbedError::Http { status, message } = &err else {
        panic!("expected an HTTP error, got {err:?}");
    };
    assert_eq!(*status, 400);
    assert!(message.contains("scripted embeddings failure"), "{message}");
    assert_eq!(server.embedding_request_count(), 1);

    // A real 400 from the fake's own validation: empty strings.
    let err = e.embed(&[String::new()]).await.expect_err("empty input");
    assert!(
        matches!(err, EmbedError::Http { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let server = FakeModelServer::start().await;
    let mut o = options(&server);
    o.timeout = Duration::from_millis(300);
    let e = OpenAiEmbedder::connect(o).await.expect("connect");
    server.embedding_hang(true);
    let started = Instant::now();
    let err = e.embed(&texts(1)).await.expect_err("timeout");
    assert_eq!(err, EmbedError::Timeout);
    assert_eq!(err.code(), "embedder_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.embedding_request_count(), 1, "timeouts are final");

    server.embedding_hang(false);
    server.embedding_delay(Duration::from_millis(600));
    assert_eq!(e.embed(&texts(1)).await, Err(EmbedError::Timeout));
    server.embedding_delay(Duration::ZERO);
    e.embed(&texts(1)).await.expect("answers again");
}

#[tokio::test]
async fn malformed_bodies_are_invalid_responses() {
    let server = FakeModelServer::start().await;
    let e = OpenAiEmbedder::connect(options(&server))
        .await
        .expect("connect");
    server.push_embedding_raw(200, "{not json");
    server.push_embedding_raw(200, r#"{"object":"list","data":[]}"#);
    server.push_embedding_raw(
        200,
        json!({"data": [{"index": 0, "embedding": [1.0, 0.0]}]}).to_string(),
    );
    for _ in 0..3 {
        let err = e.embed(&texts(1)).await.expect_err("invalid");
        assert_eq!(err.code(), "embedder_invalid_response", "{err}");
    }
    assert_eq!(server.embedding_request_count(), 3, "never retried");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut o = OpenAiOptions::new("fake-embed");
    o.base_url = format!("http://127.0.0.1:{port}/v1");
    o.dimensions = Some(8);
    o.retry = RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let e = OpenAiEmbedder::connect(o).await.expect("no probe needed");
    let err = e.embed(&texts(1)).await.expect_err("refused");
    assert_eq!(err.code(), "embedder_unreachable", "{err}");
}

#[tokio::test]
async fn sends_the_key_in_the_configured_header() {
    let server = FakeModelServer::start().await;
    let mut o = options(&server);
    o.api_key = Some("sk-test".into());
    let e = OpenAiEmbedder::connect(o.clone()).await.expect("connect");
    e.embed(&texts(1)).await.expect("embed");
    let request = server.embedding_requests().pop().expect("recorded");
    assert_eq!(request.header("authorization"), Some("Bearer sk-test"));

    o.auth_header = Some("api-key".into());
    let e = OpenAiEmbedder::connect(o).await.expect("connect");
    e.embed(&texts(1)).await.expect("embed");
    let request = server.embedding_requests().pop().expect("recorded");
    assert_eq!(request.header("api-key"), Some("sk-test"));
    assert_eq!(request.header("authorization"), None);

    // And a rejected key is not echoed back in the error.
    server.push_embedding_raw(
        401,
        json!({"error": {"message": "Incorrect API key provided: sk-test"}}).to_string(),
    );
    let err = e.embed(&texts(1)).await.expect_err("401");
    assert!(!err.to_string().contains("sk-test"), "{err}");
}

#[tokio::test]
async fn build_from_config_and_leave_the_chat_queue_alone() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("for the chat endpoint"));
    let config: EmbedderConfig = serde_json::from_value(json!({
        "kind": "openai",
        "model": "fake-embed",
        "base_url": server.openai_base_url(),
        "api_key_env": "ROSTER_TEST_EMBED_KEY",
        "max_batch": 4,
    }))
    .expect("config");
    let env = |name: &str| (name == "ROSTER_TEST_EMBED_KEY").then(|| "sk-env".to_owned());
    let e = build(&config, &env).await.expect("build");
    assert_eq!(
        (e.id(), e.dimensions(), e.max_batch()),
        ("openai/fake-embed", 64, 4)
    );
    let inputs = texts(5);
    assert_matches_fake(&e.embed(&inputs).await.expect("embed"), &inputs, 64);
    assert_eq!(server.embedding_request_count(), 3, "probe + 2 batches");
    assert_eq!(server.pending(), 1, "the chat reply is still queued");
    assert_eq!(server.request_count(), 0, "no chat request recorded");
}
