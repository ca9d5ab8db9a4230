//! HTTP services against a tenant trying to reach what it must not:
//! loopback in every spelling, the metadata service, private ranges,
//! Roster's own listener, a name that resolves to loopback when the call
//! is made, and an allowed service that redirects to loopback. Each is
//! refused with a clear error, and the target never sees a request.

use axum::response::Redirect;
use axum::routing::get;
use roster_core::TenantId;
use roster_egress::EgressPolicy;
use roster_openapi::{HttpProvider, HttpServiceInput, HttpServices};
use roster_store::DynStore;
use roster_tool::{ToolCallContext, ToolProvider};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const SPEC: &str = r##"
openapi: 3.0.3
info: {title: Probe, version: "1"}
paths:
  /hello:
    get: {operationId: hello, responses: {"200": {description: ok}}}
  /out:
    get: {operationId: out, responses: {"200": {description: ok}}}
"##;

/// A service counting the requests it receives; `/out` redirects to
/// `redirect` when given.
async fn service(redirect: Option<String>) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let counted_out = hits.clone();
    let app = axum::Router::new()
        .route(
            "/hello",
            get(move || {
                let hits = counted.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    "hello from the service"
                }
            }),
        )
        .route(
            "/out",
            get(move || {
                let hits = counted_out.clone();
                let target = redirect.clone().unwrap_or_else(|| "/hello".into());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    Redirect::temporary(&target)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

struct World {
    _dir: tempfile::TempDir,
    store: DynStore,
    tenant: TenantId,
    secrets: roster_secrets::SecretBox,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let secrets =
        roster_secrets::SecretBox::from_base64(&roster_secrets::SecretBox::generate_key())
            .expect("key");
    World {
        _dir: dir,
        store,
        tenant,
        secrets,
    }
}

impl World {
    fn services(&self, egress: EgressPolicy) -> Arc<HttpServices> {
        HttpServices::new(self.store.clone(), self.secrets.clone(), Arc::new(egress))
    }
}

fn input(body: serde_json::Value) -> HttpServiceInput {
    serde_json::from_value(body).expect("input")
}

fn ctx(tenant: &TenantId) -> ToolCallContext {
    ToolCallContext {
        tenant: tenant.clone(),
        agent_id: roster_core::AgentId::generate(),
        session_id: roster_core::SessionId::generate(),
        run_id: roster_core::RunId::generate(),
        call_id: "call_1".into(),
    }
}

async fn call(services: &Arc<HttpServices>, tenant: &TenantId, tool: &str) -> (String, bool) {
    let tools = HttpProvider::new(services.clone())
        .resolve(tenant, "probe")
        .await
        .expect("resolve");
    let tool = tools.iter().find(|t| t.name() == tool).expect("tool");
    let out = tool.call(&ctx(tenant), json!({})).await;
    (out.text, out.is_error)
}

#[tokio::test]
async fn loopback_metadata_and_private_addresses_are_refused_at_registration() {
    let (addr, hits) = service(None).await;
    let w = world().await;
    let services = w.services(EgressPolicy::default());
    let port = addr.port();
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://LOCALHOST.:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://127.1:{port}"),
        format!("http://0x7f.1:{port}"),
        format!("http://2130706433:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        "http://169.254.169.254/latest".to_owned(),
        "http://10.0.0.1".to_owned(),
        "http://172.16.5.4:8080".to_owned(),
        "http://0.0.0.0".to_owned(),
    ] {
        let err = services
            .register(
                &w.tenant,
                input(json!({"name": "probe", "spec": SPEC, "base_url": base})),
                "key:tenant",
            )
            .await
            .expect_err(&base);
        assert_eq!(err.code(), "egress_denied", "{base}: {err}");
        assert!(err.to_string().contains("[egress] allow"), "{base}: {err}");
    }
    assert!(w
        .store
        .list_integrations(&w.tenant, "http")
        .await
        .expect("list")
        .is_empty());
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the service saw nothing");

    // Roster's own listener, even where the allow-list opens loopback.
    let mut own = EgressPolicy::new(&["127.0.0.0/8"]).expect("policy");
    own.protect_listener(addr);
    let err = w
        .services(own)
        .register(
            &w.tenant,
            input(json!({"name": "probe", "spec": SPEC, "base_url": format!("http://localhost:{port}")})),
            "key:tenant",
        )
        .await
        .expect_err("own listener");
    assert!(err.to_string().contains("Roster's own listener"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_address_is_checked_again_at_every_connection() {
    let (addr, hits) = service(None).await;
    let w = world().await;
    // Registered while the name led somewhere allowed…
    let lenient =
        w.services(EgressPolicy::new(&[format!("127.0.0.1:{}", addr.port())]).expect("policy"));
    lenient
        .register(
            &w.tenant,
            input(json!({"name": "probe", "spec": SPEC, "base_url": format!("http://localhost:{}", addr.port())})),
            "key:tenant",
        )
        .await
        .expect("allowed then");
    let (text, is_error) = call(&lenient, &w.tenant, "probe__hello").await;
    assert!(
        !is_error && text.contains("hello from the service"),
        "{text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // …the same name now resolving to an address the policy refuses is
    // refused when the call connects, before a byte is sent.
    let strict = w.services(EgressPolicy::default());
    let (text, is_error) = call(&strict, &w.tenant, "probe__hello").await;
    assert!(is_error, "{text}");
    assert!(
        text.contains("refused") && text.contains("an address of `localhost`"),
        "{text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no second request arrived");
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused() {
    // The target the redirects aim at: it must never be reached.
    let (inner, inner_hits) = service(None).await;
    let w = world().await;
    for target in [
        format!("http://localhost:{}/hello", inner.port()),
        format!("http://127.0.0.1:{}/hello", inner.port()),
        format!("http://[::1]:{}/hello", inner.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let (outer, outer_hits) = service(Some(target.clone())).await;
        // Only the redirecting service is allowed, exactly; every redirect
        // target is on its host list, so only the egress policy stands in
        // the way.
        let services = w
            .services(EgressPolicy::new(&[format!("127.0.0.1:{}", outer.port())]).expect("policy"));
        services
            .register(
                &w.tenant,
                input(json!({
                    "name": "probe", "spec": SPEC,
                    "base_url": format!("http://127.0.0.1:{}", outer.port()),
                    "allow_hosts": ["127.0.0.1", "localhost", "[::1]", "169.254.169.254"],
                })),
                "key:tenant",
            )
            .await
            .expect("register");
        let (text, is_error) = call(&services, &w.tenant, "probe__out").await;
        assert!(is_error, "{target}: {text}");
        assert!(text.contains("refused"), "{target}: {text}");
        assert_eq!(outer_hits.load(Ordering::SeqCst), 1, "{target}");
        services
            .remove(&w.tenant, "probe", "key:tenant")
            .await
            .expect("remove");
    }
    assert_eq!(
        inner_hits.load(Ordering::SeqCst),
        0,
        "no redirect reached loopback"
    );
}
