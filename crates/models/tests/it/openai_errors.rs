//! The OpenAI-compatible provider's failures against the fake model server
//! over real HTTP: every error status, garbage, cut streams, timeouts.

use crate::common;

use common::{ignore, openai, openai_config, request};
use roster_models::{ModelProvider, OpenAiProvider, ProviderError};
use roster_testkit::{FakeModelServer, Reply};
use std::time::{Duration, Instant};

async fn error_of(reply: Reply, stream: bool) -> ProviderError {
    let server = FakeModelServer::start().await;
    server.push(reply);
    openai(&server)
        .chat(&request(stream), &ignore)
        .await
        .expect_err("must fail")
}

#[tokio::test]
async fn error_statuses_map_to_kinds() {
    for stream in [false, true] {
        let e = error_of(Reply::error(429, "slow down").retry_after(7), stream).await;
        match e {
            ProviderError::RateLimited {
                retry_after,
                message,
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert!(message.contains("slow down"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let codes = [
            (Reply::error(401, "bad key"), "provider_auth"),
            (Reply::error(403, "forbidden"), "provider_auth"),
            (Reply::context_overflow(), "provider_context_overflow"),
            (Reply::error(400, "bad tool schema"), "provider_bad_request"),
            (Reply::error(404, "no such model"), "provider_not_found"),
            (Reply::error(500, "boom"), "provider_transient"),
            (Reply::error(503, "unavailable"), "provider_transient"),
        ];
        for (reply, code) in codes {
            assert_eq!(
                error_of(reply, stream).await.code(),
                code,
                "stream={stream}"
            );
        }
    }
}

#[tokio::test]
async fn non_json_error_bodies_are_quoted() {
    let page = "<html><body>502 Bad Gateway</body></html>";
    let e = error_of(Reply::raw(502, "text/html", page), false).await;
    match e {
        ProviderError::Transient { message } => {
            assert!(message.contains("502 Bad Gateway"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let e = error_of(Reply::raw(400, "text/plain", "nope"), true).await;
    assert_eq!(
        e,
        ProviderError::BadRequest {
            message: "400 Bad Request: nope".into()
        }
    );
}

#[tokio::test]
async fn garbage_and_empty_answers_are_invalid() {
    let invalid = "provider_invalid_response";
    assert_eq!(
        error_of(Reply::raw(200, "application/json", "{\"choices\":"), false)
            .await
            .code(),
        invalid
    );
    assert_eq!(
        error_of(Reply::raw(200, "text/html", "<html>"), false)
            .await
            .code(),
        invalid
    );
    assert_eq!(
        error_of(Reply::empty_choices(), false).await.code(),
        invalid
    );
    assert_eq!(error_of(Reply::empty_choices(), true).await.code(), invalid);
}

#[tokio::test]
async fn cut_streams_are_transient() {
    let e = error_of(
        Reply::text("one two three four five six").cut_stream(),
        true,
    )
    .await;
    assert_eq!(e.code(), "provider_transient", "{e:?}");
    let e = error_of(Reply::tool_call("c", "f", r#"{"a":1}"#).cut_stream(), true).await;
    assert_eq!(e.code(), "provider_transient", "{e:?}");
    // A cut JSON body is either a transport error or truncated JSON.
    let e = error_of(Reply::text("one two three").cut_stream(), false).await;
    assert!(
        matches!(e.code(), "provider_transient" | "provider_invalid_response"),
        "{e:?}"
    );
}

#[tokio::test]
async fn hang_times_out_with_short_timeout() {
    for stream in [false, true] {
        let server = FakeModelServer::start().await;
        server.push(Reply::text("never").hang());
        let mut config = openai_config(&server);
        config.timeout_secs = 1;
        let provider = OpenAiProvider::new(config).expect("builds");
        let started = Instant::now();
        let e = provider
            .chat(&request(stream), &ignore)
            .await
            .expect_err("times out");
        assert_eq!(e.code(), "provider_timeout", "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn connection_refused_is_transient_and_hides_key() {
    let server = FakeModelServer::start().await;
    let config = openai_config(&server);
    drop(server);
    let provider = OpenAiProvider::new(config).expect("builds");
    let e = provider
        .chat(&request(false), &ignore)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), "provider_transient", "{e:?}");
    assert!(!e.to_string().contains("sk-test-secret"));
}
