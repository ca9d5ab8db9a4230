//! The router against fake model servers over real HTTP: retries, backoff,
//! `retry-after`, fallbacks, immediate failures, and attempt reporting.

use crate::common;

use common::{ignore, openai_config, request, Deltas};
use roster_core::route::ModelRoute;
use roster_models::{Attempt, ProviderConfig, ProviderKind, ProviderRegistry, RetryPolicy, Router};
use roster_testkit::{FakeModelServer, Reply};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        patience: Duration::ZERO,
    }
}

fn router(configs: Vec<ProviderConfig>) -> Router {
    let registry = ProviderRegistry::from_config(configs, &|_| None).expect("registry");
    Router::new(Arc::new(registry), fast_policy())
}

fn named(server: &FakeModelServer, name: &str) -> ProviderConfig {
    let mut config = openai_config(server);
    config.name = name.into();
    config
}

fn route(primary: &str, fallbacks: &[&str]) -> ModelRoute {
    let fallbacks: Vec<String> = fallbacks.iter().map(|s| (*s).to_owned()).collect();
    ModelRoute::parse(primary, &fallbacks).expect("route")
}

#[derive(Default)]
struct Attempts(Mutex<Vec<Attempt>>);

impl Attempts {
    fn push(&self, a: Attempt) {
        self.0.lock().expect("lock").push(a);
    }

    fn outcomes(&self) -> Vec<(String, String, &'static str)> {
        let all = self.0.lock().expect("lock").clone();
        all.into_iter()
            .map(|a| {
                let code = a.error.as_ref().map_or("ok", |e| e.code());
                (a.provider, a.model, code)
            })
            .collect()
    }
}

fn outcome(provider: &str, model: &str, code: &'static str) -> (String, String, &'static str) {
    (provider.to_owned(), model.to_owned(), code)
}

#[tokio::test]
async fn retries_a_503_then_succeeds() {
    let server = FakeModelServer::start().await;
    server.push_all([
        Reply::error(503, "busy"),
        Reply::error(503, "busy"),
        Reply::text("hi").with_usage(4, 2),
    ]);
    let attempts = Attempts::default();
    let (r, target) = router(vec![named(&server, "a")])
        .chat(&route("a/m1", &[]), request(false), &ignore, &|a| {
            attempts.push(a)
        })
        .await
        .expect("succeeds");
    assert_eq!(r.text, "hi");
    assert_eq!(target.to_string(), "a/m1");
    assert_eq!(server.request_count(), 3);
    assert_eq!(
        attempts.outcomes(),
        vec![
            outcome("a", "m1", "provider_transient"),
            outcome("a", "m1", "provider_transient"),
            outcome("a", "m1", "ok"),
        ]
    );
    let last = attempts
        .0
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("attempt");
    assert_eq!(
        last.usage.map(|u| (u.input_tokens, u.output_tokens)),
        Some((4, 2))
    );
    assert!(server.requests().iter().all(|r| r.body["model"] == "m1"));
}

#[tokio::test]
async fn honours_retry_after() {
    let server = FakeModelServer::start().await;
    server.push_all([
        Reply::error(429, "slow down").retry_after(1),
        Reply::text("hi"),
    ]);
    let started = Instant::now();
    router(vec![named(&server, "a")])
        .chat(&route("a/m", &[]), request(false), &ignore, &|_| {})
        .await
        .expect("succeeds");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn retry_after_beyond_max_delay_moves_on_at_once() {
    let (first, second) = (
        FakeModelServer::start().await,
        FakeModelServer::start().await,
    );
    first.push(Reply::error(429, "come back tomorrow").retry_after(3600));
    second.push(Reply::text("from b"));
    let started = Instant::now();
    let (r, target) = router(vec![named(&first, "a"), named(&second, "b")])
        .chat(&route("a/m", &["b/n"]), request(false), &ignore, &|_| {})
        .await
        .expect("falls back");
    assert_eq!((r.text.as_str(), target.provider.as_str()), ("from b", "b"));
    assert_eq!(first.request_count(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn falls_back_after_exhausting_retries() {
    let (first, second) = (
        FakeModelServer::start().await,
        FakeModelServer::start().await,
    );
    first.push_all([
        Reply::error(500, "x"),
        Reply::error(502, "x"),
        Reply::error(503, "x"),
    ]);
    second.push(Reply::text("from b"));
    let attempts = Attempts::default();
    let deltas = Deltas::default();
    let (r, target) = router(vec![named(&first, "a"), named(&second, "b")])
        .chat(
            &route("a/m", &["b/n"]),
            request(true),
            &|t: &str| deltas.push(t),
            &|a| attempts.push(a),
        )
        .await
        .expect("falls back");
    assert_eq!(r.text, "from b");
    assert_eq!(deltas.all().concat(), "from b");
    assert_eq!(target.to_string(), "b/n");
    assert_eq!(first.request_count(), 3, "one try and two retries");
    assert_eq!(second.last_request().expect("recorded").body["model"], "n");
    assert_eq!(attempts.outcomes().len(), 4);
    assert_eq!(attempts.outcomes()[3], outcome("b", "n", "ok"));
}

#[tokio::test]
async fn auth_failure_falls_through_without_retry() {
    let (first, second) = (
        FakeModelServer::start().await,
        FakeModelServer::start().await,
    );
    first.push(Reply::error(401, "bad key"));
    second.push(Reply::text("ok"));
    let attempts = Attempts::default();
    router(vec![named(&first, "a"), named(&second, "b")])
        .chat(&route("a/m", &["b/n"]), request(false), &ignore, &|a| {
            attempts.push(a)
        })
        .await
        .expect("falls back");
    assert_eq!(
        attempts.outcomes(),
        vec![outcome("a", "m", "provider_auth"), outcome("b", "n", "ok")]
    );
}

#[tokio::test]
async fn bad_request_and_overflow_are_returned_at_once() {
    for reply in [Reply::error(400, "bad schema"), Reply::context_overflow()] {
        let (first, second) = (
            FakeModelServer::start().await,
            FakeModelServer::start().await,
        );
        first.push(reply);
        second.push(Reply::text("unused"));
        let attempts = Attempts::default();
        let e = router(vec![named(&first, "a"), named(&second, "b")])
            .chat(&route("a/m", &["b/n"]), request(false), &ignore, &|a| {
                attempts.push(a)
            })
            .await
            .expect_err("fails");
        assert!(matches!(
            e.code(),
            "provider_bad_request" | "provider_context_overflow"
        ));
        assert_eq!(first.request_count(), 1, "not retried");
        assert_eq!(second.request_count(), 0, "no fallback");
        assert_eq!(attempts.outcomes().len(), 1);
    }
}

#[tokio::test]
async fn invalid_response_moves_to_next_target_without_retry() {
    let (first, second) = (
        FakeModelServer::start().await,
        FakeModelServer::start().await,
    );
    first.push(Reply::empty_choices());
    second.push(Reply::text("ok"));
    let (_, target) = router(vec![named(&first, "a"), named(&second, "b")])
        .chat(&route("a/m", &["b/n"]), request(false), &ignore, &|_| {})
        .await
        .expect("falls back");
    assert_eq!(target.provider, "b");
    assert_eq!(first.request_count(), 1);
}

#[tokio::test]
async fn unknown_provider_is_reported_and_skipped() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("ok"));
    let attempts = Attempts::default();
    let router = router(vec![named(&server, "b")]);
    let (_, target) = router
        .chat(&route("nope/m", &["b/n"]), request(false), &ignore, &|a| {
            attempts.push(a)
        })
        .await
        .expect("falls back");
    assert_eq!(target.provider, "b");
    assert_eq!(
        attempts.outcomes()[0],
        outcome("nope", "m", "unknown_provider")
    );

    let e = router
        .chat(&route("nope/m", &[]), request(false), &ignore, &|_| {})
        .await
        .expect_err("no provider");
    assert_eq!(e.code(), "unknown_provider");
}

#[tokio::test]
async fn all_targets_failing_returns_the_last_error() {
    let server = FakeModelServer::start().await;
    server.push_all([Reply::error(401, "a"), Reply::error(403, "b")]);
    let mut anthropic =
        ProviderConfig::new("c", ProviderKind::Anthropic, server.anthropic_base_url());
    anthropic.max_retries = Some(0);
    let e = router(vec![named(&server, "a"), anthropic])
        .chat(&route("a/m", &["c/n"]), request(false), &ignore, &|_| {})
        .await
        .expect_err("fails");
    assert_eq!(e.code(), "provider_auth");
    assert!(e.to_string().contains("403"), "{e}");
}

#[tokio::test]
async fn provider_max_retries_overrides_policy() {
    let server = FakeModelServer::start().await;
    server.push_all([Reply::error(503, "x"), Reply::text("never reached")]);
    let mut config = named(&server, "a");
    config.max_retries = Some(0);
    let e = router(vec![config])
        .chat(&route("a/m", &[]), request(false), &ignore, &|_| {})
        .await
        .expect_err("no retry");
    assert_eq!(e.code(), "provider_transient");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_call_abandoned_in_flight_is_reported_as_cancelled() {
    let server = FakeModelServer::start().await;
    server.push_all([Reply::error(503, "busy"), Reply::text("late").hang()]);
    let attempts = Attempts::default();
    let router = router(vec![named(&server, "a")]);
    let on_attempt = |a| attempts.push(a);
    let to = route("a/m1", &[]);
    let call = router.chat(&to, request(false), &ignore, &on_attempt);
    // The caller gives up while the retry is in flight.
    let abandoned = tokio::time::timeout(Duration::from_millis(500), call).await;
    assert!(abandoned.is_err(), "the hung call cannot have finished");
    assert_eq!(server.request_count(), 2);
    assert_eq!(
        attempts.outcomes(),
        vec![
            outcome("a", "m1", "provider_transient"),
            outcome("a", "m1", "cancelled")
        ]
    );
}

#[tokio::test]
async fn a_model_the_provider_does_not_have_falls_back_without_retry() {
    let first = FakeModelServer::start().await;
    let second = FakeModelServer::start().await;
    first.push(Reply::error(404, "model \"llama3.1\" not found"));
    second.push(Reply::text("from the fallback"));
    let attempts = Attempts::default();
    let (r, target) = router(vec![named(&first, "local"), named(&second, "cloud")])
        .chat(
            &route("local/llama3.1", &["cloud/m"]),
            request(false),
            &ignore,
            &|a| attempts.push(a),
        )
        .await
        .expect("falls back");
    assert_eq!(r.text, "from the fallback");
    assert_eq!(target.to_string(), "cloud/m");
    assert_eq!(first.request_count(), 1, "a 404 is not retried");
    assert_eq!(
        attempts.outcomes(),
        vec![
            outcome("local", "llama3.1", "provider_not_found"),
            outcome("cloud", "m", "ok")
        ]
    );
}
