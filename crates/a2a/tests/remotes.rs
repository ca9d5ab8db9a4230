//! The manager and the call against a scripted A2A remote (axum) and the
//! real store (SQLite): registration seals the credential and refuses
//! walled addresses, calls carry the credential and continue the session's
//! conversation, a task left running is polled, a stale waiting task is
//! dropped, a hung remote costs the call its timeout, and a refresh keeps
//! the conversations a removal takes.
//!
//! The same behaviour against the real a2a-sdk server and the real binary
//! is in `crates/roster/tests/it/e2e_a2a.rs`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Json;
use roster_a2a::{A2aError, RemoteInput, Remotes};
use roster_core::{SessionId, TenantId};
use roster_egress::{EgressError, EgressPolicy};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the remote saw, and what its card says now.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, Option<String>, Option<String>, Value)>,
    description: String,
    polls: usize,
}

type Shared = Arc<Mutex<Seen>>;

async fn card(State((seen, base)): State<(Shared, String)>) -> Json<Value> {
    let description = seen.lock().expect("lock").description.clone();
    Json(json!({
        "name": "Scripted",
        "description": description,
        "supportedInterfaces": [{"url": format!("{base}/rpc"), "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "version": "1",
        "skills": [{"id": "s", "name": "Script", "description": "Follows a script.", "tags": []}]
    }))
}

async fn walled_card() -> Json<Value> {
    Json(json!({
        "name": "Walled", "url": "http://10.1.2.3:9/rpc", "protocolVersion": "0.3.0"
    }))
}

fn completed(context: &str, text: &str) -> Value {
    json!({"task": {"id": "t-done", "contextId": context,
        "status": {"state": "TASK_STATE_COMPLETED"},
        "artifacts": [{"artifactId": "a", "parts": [{"text": text}]}]}})
}

async fn rpc(
    State((seen, _)): State<(Shared, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    let params = body["params"].clone();
    let count = {
        let mut seen = seen.lock().expect("lock");
        seen.requests.push((
            method.clone(),
            header("a2a-version"),
            header("authorization"),
            params.clone(),
        ));
        seen.requests.len()
    };
    let id = body["id"].clone();
    let answer = |result: Value| Json(json!({"jsonrpc": "2.0", "id": id, "result": result}));
    if method == "GetTask" {
        let polls = {
            let mut seen = seen.lock().expect("lock");
            seen.polls += 1;
            seen.polls
        };
        return answer(if polls < 2 {
            json!({"id": "t-slow", "contextId": "ctx-slow", "status": {"state": "TASK_STATE_WORKING"}})
        } else {
            json!({"id": "t-slow", "contextId": "ctx-slow", "status": {"state": "TASK_STATE_COMPLETED"},
                   "artifacts": [{"artifactId": "a", "parts": [{"text": "slow but done"}]}]})
        });
    }
    let message = &params["message"];
    let text = message["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if message["taskId"] == "gone" {
        return Json(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32001, "message": "Task gone not found"}}),
        );
    }
    let context = message["contextId"]
        .as_str()
        .map_or_else(|| format!("ctx-{count}"), str::to_owned);
    match text.as_str() {
        "hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            answer(completed(&context, "too late"))
        }
        "slow" => answer(
            json!({"task": {"id": "t-slow", "contextId": context, "status": {"state": "TASK_STATE_SUBMITTED"}}}),
        ),
        "ask me" => answer(json!({"task": {"id": "t-wait", "contextId": context,
            "status": {"state": "TASK_STATE_INPUT_REQUIRED", "message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "Which city?"}]}}}})),
        _ => answer(completed(&context, &format!("heard: {text} in {context}"))),
    }
}

struct Fixture {
    remotes: Arc<Remotes>,
    store: roster_store::DynStore,
    seen: Shared,
    base: String,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let seen: Shared = Arc::default();
    seen.lock().expect("lock").description = "First words.".into();
    let app = axum::Router::new()
        .route("/.well-known/agent-card.json", get(card))
        .route("/walled.json", get(walled_card))
        .route("/rpc", post(rpc))
        .with_state((seen.clone(), base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!(
        "sqlite://{}",
        dir.path().join("roster.db").display()
    ))
    .await
    .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let secrets = roster_secrets::SecretBox::load(None, dir.path()).expect("secrets");
    // The operator opens exactly the scripted remote's address and port.
    let egress = Arc::new(EgressPolicy::new(&[addr.to_string()]).expect("policy"));
    Fixture {
        remotes: Remotes::new(store.clone(), secrets, egress),
        store,
        seen,
        base,
        tenant,
        _dir: dir,
    }
}

fn input(name: &str, url: &str) -> RemoteInput {
    RemoteInput {
        name: name.into(),
        url: url.into(),
        bearer_token: Some("tok-secret".into()),
        headers: BTreeMap::new(),
        description: None,
        timeout_secs: Some(1),
    }
}

fn ask(message: &str) -> Value {
    json!({"message": message})
}

#[tokio::test]
async fn a_remote_is_registered_called_continued_refreshed_and_removed() {
    let f = fixture().await;
    let stored = f
        .remotes
        .register(&f.tenant, input("script", &f.base), "key:test")
        .await
        .expect("register");
    assert!(stored.sealed.is_some(), "the credential is sealed");
    assert!(
        !stored.config.to_string().contains("tok-secret"),
        "{}",
        stored.config
    );
    assert_eq!(stored.config["headers"], json!(["Authorization"]));
    assert_eq!(stored.config["card"]["endpoint"], format!("{}/rpc", f.base));
    let again = f
        .remotes
        .register(&f.tenant, input("script", &f.base), "key:test")
        .await
        .expect_err("a second one");
    assert!(again.to_string().contains("exists"), "{again}");

    let session = SessionId::generate();
    let first = f
        .remotes
        .call(&f.tenant, "script", &session, ask("one"))
        .await;
    assert!(!first.is_error, "{}", first.text);
    assert_eq!(first.text, "heard: one in ctx-1");
    let second = f
        .remotes
        .call(&f.tenant, "script", &session, ask("two"))
        .await;
    assert_eq!(
        second.text, "heard: two in ctx-1",
        "the conversation goes on"
    );
    let other = f
        .remotes
        .call(&f.tenant, "script", &SessionId::generate(), ask("x"))
        .await;
    assert_eq!(
        other.text, "heard: x in ctx-3",
        "another session has its own"
    );
    let fresh = f
        .remotes
        .call(
            &f.tenant,
            "script",
            &session,
            json!({"message": "three", "new_conversation": true}),
        )
        .await;
    assert_eq!(fresh.text, "heard: three in ctx-4");
    {
        let seen = f.seen.lock().expect("lock");
        for (method, version, auth, _) in &seen.requests {
            assert_eq!(method, "SendMessage");
            assert_eq!(version.as_deref(), Some("1.0"));
            assert_eq!(auth.as_deref(), Some("Bearer tok-secret"));
        }
        assert!(seen.requests[0].3["message"].get("contextId").is_none());
        assert_eq!(seen.requests[1].3["message"]["contextId"], "ctx-1");
        assert_eq!(seen.requests[1].3["message"]["role"], "ROLE_USER");
    }

    // A task waiting for input: an error that says so; the next call
    // answers that task.
    let waiting = f
        .remotes
        .call(&f.tenant, "script", &session, ask("ask me"))
        .await;
    assert!(
        waiting.is_error && waiting.text.contains("Which city?"),
        "{}",
        waiting.text
    );
    f.remotes
        .call(&f.tenant, "script", &session, ask("Paris"))
        .await;
    let sent = f
        .seen
        .lock()
        .expect("lock")
        .requests
        .last()
        .expect("sent")
        .3
        .clone();
    assert_eq!(sent["message"]["taskId"], "t-wait");
    assert_eq!(sent["message"]["contextId"], "ctx-4");

    // A task the remote no longer has is dropped, and the message goes as
    // a new task in the same conversation.
    let remote_id = stored.id.clone();
    f.store
        .set_remote_context(&f.tenant, &remote_id, &session, Some("ctx-4"), Some("gone"))
        .await
        .expect("set");
    let retried = f
        .remotes
        .call(&f.tenant, "script", &session, ask("again"))
        .await;
    assert_eq!(retried.text, "heard: again in ctx-4", "{}", retried.text);
    let context = f
        .store
        .remote_context(&f.tenant, &remote_id, &session)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (context.context_id.as_str(), context.task_id),
        ("ctx-4", None)
    );

    // A remote that answered before its task finished is polled.
    let slow = f
        .remotes
        .call(&f.tenant, "script", &SessionId::generate(), ask("slow"))
        .await;
    assert_eq!(slow.text, "slow but done", "{}", slow.text);

    // A hung remote costs the call its timeout (1 s here), and no more.
    let started = Instant::now();
    let hung = f
        .remotes
        .call(&f.tenant, "script", &session, ask("hang"))
        .await;
    assert!(
        hung.is_error && hung.text.contains("did not answer within 1s"),
        "{}",
        hung.text
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // A refresh reads the card again and keeps the conversations.
    f.seen.lock().expect("lock").description = "Second words.".into();
    let refreshed = f
        .remotes
        .refresh(&f.tenant, "script", "key:test")
        .await
        .expect("refresh");
    assert_eq!(refreshed.config["card"]["description"], "Second words.");
    assert_eq!(refreshed.id, remote_id);
    assert!(f
        .store
        .remote_context(&f.tenant, &remote_id, &session)
        .await
        .expect("read")
        .is_some());

    // Removal takes the conversations; the tool then says the remote is gone.
    f.remotes
        .remove(&f.tenant, "script", "key:test")
        .await
        .expect("remove");
    assert!(f
        .store
        .remote_context(&f.tenant, &remote_id, &session)
        .await
        .expect("read")
        .is_none());
    let gone = f
        .remotes
        .call(&f.tenant, "script", &session, ask("hello?"))
        .await;
    assert!(
        gone.is_error && gone.text.contains("no remote agent `script`"),
        "{}",
        gone.text
    );
    assert!(matches!(
        f.remotes.remove(&f.tenant, "script", "key:test").await,
        Err(A2aError::NotFound(_))
    ));

    let actions: Vec<String> = f
        .store
        .list_audit(
            &f.tenant,
            &roster_store::AuditQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["a2a.add", "a2a.refresh", "a2a.remove"]);
}

#[tokio::test]
async fn walled_cards_and_endpoints_are_refused_before_anything_is_stored() {
    let f = fixture().await;
    // The card's endpoint is a private address the operator did not open.
    let err = f
        .remotes
        .register(
            &f.tenant,
            input("walled", &format!("{}/walled.json", f.base)),
            "key:test",
        )
        .await
        .expect_err("refused");
    let A2aError::Egress(EgressError::Denied(why)) = &err else {
        panic!("not an egress refusal: {err}");
    };
    assert!(why.contains("endpoint http://10.1.2.3:9/rpc"), "{why}");
    assert_eq!(err.code(), "egress_denied");
    // A card on loopback at a port the operator did not open; and the
    // cloud metadata address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        "http://169.254.169.254/".to_owned(),
    ] {
        let err = f
            .remotes
            .register(&f.tenant, input("walled", &url), "key:test")
            .await
            .expect_err("refused");
        assert_eq!(err.code(), "egress_denied", "{url}: {err}");
    }
    assert!(f.remotes.list(&f.tenant).await.expect("list").is_empty());
    // A card that is not one.
    let err = f
        .remotes
        .register(
            &f.tenant,
            input("nope", &format!("{}/rpc.json", f.base)),
            "key:test",
        )
        .await
        .expect_err("no card");
    assert_eq!(err.code(), "remote_unavailable", "{err}");
}
