//! Patience against fake model servers over real HTTP: a call outlasts a
//! 503 storm and refused connections with many backed-off attempts, honours
//! `retry-after`, falls back during an outage, gives up when its patience
//! is spent, resumes an outage it is handed, and fails at once on errors no
//! wait can fix.

use crate::common;

use common::{ignore, openai_config, request};
use roster_core::route::{ModelRoute, RouteTarget};
use roster_models::{
    Attempt, ChatResponse, Outage, Pause, ProviderConfig, ProviderError, ProviderRegistry,
    RetryPolicy, Router, Sleep,
};
use roster_testkit::{FakeModelServer, Reply};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn router(configs: Vec<ProviderConfig>, patience: Duration) -> Router {
    let registry = ProviderRegistry::from_config(configs, &|_| None).expect("registry");
    Router::new(
        Arc::new(registry),
        RetryPolicy {
            max_retries: 1,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(150),
            patience,
        },
    )
}

fn named(server: &FakeModelServer, name: &str) -> ProviderConfig {
    let mut config = openai_config(server);
    config.name = name.into();
    config.connect_timeout_secs = 1;
    config.timeout_secs = 5;
    config
}

fn route(primary: &str, fallbacks: &[&str]) -> ModelRoute {
    let fallbacks: Vec<String> = fallbacks.iter().map(|s| (*s).to_owned()).collect();
    ModelRoute::parse(primary, &fallbacks).expect("route")
}

/// Sleeps like [`Sleep`] and keeps what each pause was told.
#[derive(Default)]
struct Recorder {
    seen: Vec<Outage>,
    stop_after: Option<usize>,
}

#[async_trait::async_trait]
impl Pause for Recorder {
    async fn pause(&mut self, outage: &Outage) -> bool {
        self.seen.push(outage.clone());
        if self.stop_after.is_some_and(|n| self.seen.len() >= n) {
            return false;
        }
        Sleep.pause(outage).await
    }
}

#[derive(Default)]
struct Attempts(Mutex<Vec<Attempt>>);

impl Attempts {
    fn push(&self, a: Attempt) {
        self.0.lock().expect("lock").push(a);
    }
    fn failed(&self) -> usize {
        let all = self.0.lock().expect("lock");
        all.iter().filter(|a| a.error.is_some()).count()
    }
    fn count(&self) -> usize {
        self.0.lock().expect("lock").len()
    }
}

/// A patient call of `route` with the test request.
async fn call(
    router: &Router,
    route: &ModelRoute,
    patience: Duration,
    outage: &mut Option<Outage>,
    pause: &mut dyn Pause,
) -> Result<(ChatResponse, RouteTarget), ProviderError> {
    router
        .chat_patiently(
            route,
            request(false),
            &ignore,
            &|_| {},
            patience,
            outage,
            pause,
        )
        .await
}

fn end_outage_after(server: &FakeModelServer, after: Duration) {
    let server = server.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        server.end_outage().await;
    });
}

#[tokio::test]
async fn a_call_outlasts_a_503_storm_and_refused_connections() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("back again"));
    server.fail_with(503);
    let storm_then_refusal = server.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        storm_then_refusal.refuse_connections().await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        storm_then_refusal.end_outage().await;
    });
    let attempts = Attempts::default();
    let mut outage = None;
    let mut pause = Recorder::default();
    let started = Instant::now();
    let (answer, target) = router(vec![named(&server, "a")], Duration::from_secs(30))
        .chat_patiently(
            &route("a/m", &[]),
            request(false),
            &ignore,
            &|a| attempts.push(a),
            Duration::from_secs(30),
            &mut outage,
            &mut pause,
        )
        .await
        .expect("outlasts the outage");
    assert_eq!(answer.text, "back again");
    assert_eq!(target.to_string(), "a/m");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let outage = outage.expect("the outage was recorded");
    assert!(outage.attempts >= 8, "many attempts: {outage:?}");
    assert_eq!(outage.attempts as usize, attempts.failed());
    assert_eq!(
        attempts.count(),
        attempts.failed() + 1,
        "one success at the end"
    );
    assert!(server.outage_answers() >= 2, "the storm was answered");
    let codes: Vec<&str> = pause.seen.iter().map(|o| o.last_error.code()).collect();
    assert!(codes.contains(&"provider_transient"), "{codes:?}");
    // Every pause kept the first failure's time and grew the counts.
    for pair in pause.seen.windows(2) {
        assert_eq!(pair[0].since, pair[1].since);
        assert!(pair[1].attempts > pair[0].attempts);
        assert!(pair[1].next_attempt_at > pair[0].next_attempt_at);
    }
    assert!(pause
        .seen
        .iter()
        .all(|o| o.next_attempt_at <= o.gives_up_at));
}

#[tokio::test]
async fn patience_runs_out_with_the_last_transient_error() {
    let server = FakeModelServer::start().await;
    server.fail_with(503);
    let mut outage = None;
    let started = Instant::now();
    let error = call(
        &router(vec![named(&server, "a")], Duration::ZERO),
        &route("a/m", &[]),
        Duration::from_millis(600),
        &mut outage,
        &mut Sleep,
    )
    .await
    .expect_err("the outage outlasts the patience");
    assert_eq!(error.code(), "provider_transient");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let outage = outage.expect("recorded");
    assert!(outage.rounds >= 3, "{outage:?}");
    // The last pass came no earlier than one backoff before the end.
    assert!(outage.next_attempt_at <= outage.gives_up_at);
    assert!(
        outage.gives_up_at - outage.next_attempt_at <= chrono::Duration::milliseconds(150),
        "{outage:?}"
    );
}

#[tokio::test]
async fn the_policy_patience_applies_unless_a_provider_asks_for_more() {
    let server = FakeModelServer::start().await;
    let plain = router(vec![named(&server, "a")], Duration::from_secs(7));
    assert_eq!(
        plain.patience_for(&route("a/m", &[])),
        Duration::from_secs(7)
    );
    let mut patient = named(&server, "b");
    patient.patience_secs = Some(90);
    let both = router(vec![named(&server, "a"), patient], Duration::from_secs(7));
    assert_eq!(
        both.patience_for(&route("a/m", &["b/m"])),
        Duration::from_secs(90)
    );
}

#[tokio::test]
async fn retry_after_sets_the_next_pass_and_one_past_the_patience_gives_up() {
    let server = FakeModelServer::start().await;
    server.push_all([
        Reply::error(429, "slow down").retry_after(1),
        Reply::error(429, "slow down").retry_after(1),
        Reply::text("thanks for waiting"),
    ]);
    let mut outage = None;
    let mut pause = Recorder::default();
    let started = Instant::now();
    let mut config = named(&server, "a");
    config.max_retries = Some(0);
    let r = router(vec![config], Duration::ZERO);
    let (answer, _) = call(
        &r,
        &route("a/m", &[]),
        Duration::from_secs(30),
        &mut outage,
        &mut pause,
    )
    .await
    .expect("answers after the wait it was asked for");
    assert_eq!(answer.text, "thanks for waiting");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(pause.seen.len(), 2);
    for seen in &pause.seen {
        let asked = seen.next_attempt_at - seen.since;
        assert!(asked >= chrono::Duration::milliseconds(900), "{seen:?}");
    }

    // Asked to come back after the patience ends: no point waiting.
    server.push(Reply::error(429, "come back tomorrow").retry_after(86_400));
    let mut outage = None;
    let started = Instant::now();
    let error = call(
        &r,
        &route("a/m", &[]),
        Duration::from_secs(60),
        &mut outage,
        &mut Sleep,
    )
    .await
    .expect_err("gives up");
    assert_eq!(error.code(), "provider_rate_limited");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_fallback_answers_during_an_outage_of_the_primary() {
    let down = FakeModelServer::start().await;
    let up = FakeModelServer::start().await;
    down.refuse_connections().await;
    up.push(Reply::text("from the fallback"));
    let mut pause = Recorder::default();
    let both = router(
        vec![named(&down, "a"), named(&up, "b")],
        Duration::from_secs(30),
    );
    let fallback = route("a/m", &["b/m"]);
    let patience = Duration::from_secs(30);
    let (answer, target) = call(&both, &fallback, patience, &mut None, &mut pause)
        .await
        .expect("the fallback answers");
    assert_eq!(answer.text, "from the fallback");
    assert_eq!(target.to_string(), "b/m");
    assert!(pause.seen.is_empty(), "no wait while a target answers");

    // Both down: the call waits, and the first to come back answers.
    up.fail_with(503);
    up.push(Reply::text("b is back"));
    end_outage_after(&up, Duration::from_millis(500));
    let (answer, target) = call(&both, &fallback, patience, &mut None, &mut pause)
        .await
        .expect("b comes back");
    assert_eq!(answer.text, "b is back");
    assert_eq!(target.to_string(), "b/m");
    assert!(!pause.seen.is_empty());
}

#[tokio::test]
async fn errors_no_wait_can_fix_fail_at_once() {
    let server = FakeModelServer::start().await;
    for (reply, code) in [
        (Reply::error(401, "bad key"), "provider_auth"),
        (Reply::error(400, "malformed"), "provider_bad_request"),
        (Reply::context_overflow(), "provider_context_overflow"),
    ] {
        server.push(reply);
        let before = server.request_count();
        let mut pause = Recorder::default();
        let mut outage = None;
        let error = call(
            &router(vec![named(&server, "a")], Duration::from_secs(60)),
            &route("a/m", &[]),
            Duration::from_secs(60),
            &mut outage,
            &mut pause,
        )
        .await
        .expect_err("fails");
        assert_eq!(error.code(), code);
        assert_eq!(server.request_count(), before + 1, "{code}: sent once");
        assert!(pause.seen.is_empty() && outage.is_none(), "{code}: no wait");
    }
    // An unknown provider: nothing to wait for, and the error says how to
    // configure one.
    let error = call(
        &router(vec![], Duration::from_secs(60)),
        &route("nope/m", &[]),
        Duration::from_secs(60),
        &mut None,
        &mut Sleep,
    )
    .await
    .expect_err("fails");
    assert_eq!(error.code(), "unknown_provider");
    let message = error.to_string();
    assert!(message.contains("no provider `nope`"), "{message}");
    assert!(message.contains("OPENAI_API_KEY"), "{message}");
    assert!(message.contains("[providers.nope]"), "{message}");
}

#[tokio::test]
async fn a_handed_outage_resumes_its_wait_and_its_clock() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("resumed"));
    let since = chrono::Utc::now() - chrono::Duration::seconds(100);
    let mut resumed = Outage::begin(
        since,
        Duration::from_secs(600),
        ProviderError::Transient {
            message: "503".into(),
        },
    );
    resumed.attempts = 7;
    resumed.rounds = 4;
    resumed.next_attempt_at = chrono::Utc::now() + chrono::Duration::milliseconds(400);
    let mut outage = Some(resumed);
    let mut pause = Recorder::default();
    let started = Instant::now();
    let (answer, _) = call(
        &router(vec![named(&server, "a")], Duration::from_secs(600)),
        &route("a/m", &[]),
        Duration::from_secs(600),
        &mut outage,
        &mut pause,
    )
    .await
    .expect("answers");
    assert_eq!(answer.text, "resumed");
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert_eq!(pause.seen.len(), 1, "the planned wait first");
    assert_eq!(pause.seen[0].since, since);

    // A resumed outage whose patience is spent still gets its last attempt.
    server.fail_with(503);
    let mut spent = Outage::begin(
        since,
        Duration::from_secs(10),
        ProviderError::Transient {
            message: "503".into(),
        },
    );
    spent.rounds = 9;
    spent.next_attempt_at = spent.gives_up_at;
    let before = server.outage_answers();
    let mut outage = Some(spent);
    let error = call(
        &router(vec![named(&server, "a")], Duration::from_secs(10)),
        &route("a/m", &[]),
        Duration::from_secs(10),
        &mut outage,
        &mut Sleep,
    )
    .await
    .expect_err("gives up");
    assert_eq!(error.code(), "provider_transient");
    assert_eq!(
        server.outage_answers(),
        before + 2,
        "one pass: a try and a retry"
    );
    assert_eq!(outage.map(|o| o.since), Some(since));
}

#[tokio::test]
async fn a_pause_that_stops_ends_the_call() {
    let server = FakeModelServer::start().await;
    server.fail_with(503);
    let mut pause = Recorder {
        stop_after: Some(2),
        ..Recorder::default()
    };
    let error = call(
        &router(vec![named(&server, "a")], Duration::from_secs(60)),
        &route("a/m", &[]),
        Duration::from_secs(60),
        &mut None,
        &mut pause,
    )
    .await
    .expect_err("stopped");
    assert_eq!(error, ProviderError::Cancelled);
    assert_eq!(pause.seen.len(), 2);
}

/// A pass that fails, retries within itself and gets through still counts
/// its failure as one of the outage's attempts.
#[tokio::test]
async fn failures_of_the_pass_that_gets_through_are_counted() {
    let server = FakeModelServer::start().await;
    server.push_all([
        Reply::error(503, "down"),
        Reply::error(503, "down"),
        Reply::error(503, "still down"),
        Reply::text("up"),
    ]);
    let attempts = Attempts::default();
    let mut outage = None;
    let (answer, _) = router(vec![named(&server, "a")], Duration::from_secs(30))
        .chat_patiently(
            &route("a/m", &[]),
            request(false),
            &ignore,
            &|a| attempts.push(a),
            Duration::from_secs(30),
            &mut outage,
            &mut Recorder::default(),
        )
        .await
        .expect("gets through");
    assert_eq!(answer.text, "up");
    let outage = outage.expect("the first pass failed");
    assert_eq!((outage.rounds, attempts.failed()), (1, 3));
    assert_eq!(outage.attempts, 3, "{outage:?}");
}
