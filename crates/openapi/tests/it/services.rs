//! HTTP services from OpenAPI documents, called against a real local HTTP
//! server: arguments become the request, credentials are added from the
//! sealed store, only allowed hosts are reached, and answers are cut to size.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::routing::get;
use axum::Json;
use roster_core::TenantId;
use roster_openapi::{import, HttpProvider, HttpServiceInput, HttpServices};
use roster_secrets::SecretBox;
use roster_store::DynStore;
use roster_tool::{ToolCallContext, ToolProvider};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Seen {
    headers: Arc<Mutex<Vec<HeaderMap>>>,
    paths: Arc<Mutex<Vec<String>>>,
}

async fn start_service() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route(
            "/api/contacts",
            get(
                |State(seen): State<Seen>, headers: HeaderMap, Query(q): Query<Vec<(String, String)>>| async move {
                    seen.headers.lock().expect("lock").push(headers);
                    Json(json!({"contacts": [{"id": 1, "name": "Ada"}], "query": q}))
                },
            )
            .post(|State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
                seen.headers.lock().expect("lock").push(headers);
                (StatusCode::CREATED, Json(json!({"created": body})))
            }),
        )
        .route(
            "/api/contacts/{id}",
            get(|State(seen): State<Seen>, uri: axum::http::Uri, Path(id): Path<String>| async move {
                seen.paths.lock().expect("lock").push(uri.path().to_owned());
                Json(json!({"id": id}))
            }),
        )
        .route("/api/big", get(|| async { "x".repeat(1_000_000) }))
        .route("/api/image", get(|| async { ([("content-type", "image/png")], vec![0u8, 1, 2, 3]) }))
        .route("/api/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "db down"}))) }))
        .route("/api/slow", get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let redirects = axum::Router::new()
        .route(
            "/api/redirect-out",
            get(move || async move {
                Redirect::temporary(&format!("http://localhost:{}/api/contacts", addr.port()))
            }),
        )
        .route(
            "/api/redirect-in",
            get(|| async { Redirect::temporary("/api/contacts") }),
        );
    let app = app.merge(redirects);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

const SPEC: &str = r##"
openapi: 3.0.3
info: {title: Contacts, version: "2.1"}
servers: [{url: "http://example.invalid/api"}]
paths:
  /contacts:
    get:
      operationId: listContacts
      summary: List contacts
      parameters:
        - $ref: "#/components/parameters/Limit"
        - {name: tag, in: query, schema: {type: array, items: {type: string}}}
        - {name: X-Trace, in: header, schema: {type: string}}
        - {name: session, in: cookie, schema: {type: string}}
      responses: {"200": {description: ok}}
    post:
      operationId: createContact
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Contact"}
      responses: {"201": {description: created}}
  /contacts/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}, description: The contact id}
    get:
      operationId: getContact
      responses: {"200": {description: ok}}
  /contacts/{id}/photo:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    put:
      operationId: uploadPhoto
      requestBody:
        content:
          multipart/form-data:
            schema: {type: object}
      responses: {"200": {description: ok}}
  /big:
    get: {operationId: big, responses: {"200": {description: ok}}}
  /image:
    get: {operationId: image, responses: {"200": {description: ok}}}
  /fail:
    get: {operationId: fail, responses: {"200": {description: ok}}}
  /slow:
    get: {operationId: slow, responses: {"200": {description: ok}}}
  /redirect-out:
    get: {operationId: redirectOut, responses: {"302": {description: away}}}
  /redirect-in:
    get: {responses: {"302": {description: here}}}
components:
  parameters:
    Limit: {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
  schemas:
    Contact:
      type: object
      required: [name]
      properties:
        name: {type: string}
        email: {type: string, nullable: true}
        manager: {$ref: "#/components/schemas/Contact"}
"##;

struct Fixture {
    _dir: tempfile::TempDir,
    store: DynStore,
    services: Arc<HttpServices>,
    tenant: TenantId,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    Fixture {
        _dir: dir,
        // The test's services listen on this machine's loopback, which the
        // egress policy opens only because the test says so.
        services: HttpServices::new(
            store.clone(),
            secrets,
            Arc::new(roster_egress::EgressPolicy::new(&["127.0.0.1"]).expect("policy")),
        ),
        store,
        tenant,
    }
}

fn input(body: Value) -> HttpServiceInput {
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

#[test]
fn a_document_becomes_operations_with_inlined_schemas() {
    let imported = import(&json!(SPEC)).expect("import");
    assert_eq!(imported.title, "Contacts");
    assert_eq!(imported.servers, ["http://example.invalid/api"]);
    let ids: Vec<&str> = imported.operations.iter().map(|o| o.id.as_str()).collect();
    assert!(
        ids.contains(&"listContacts") && ids.contains(&"get_redirect-in"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"uploadPhoto"));
    assert!(
        imported.skipped[0].contains("uploadPhoto") && imported.skipped[0].contains("multipart")
    );

    let list = imported
        .operations
        .iter()
        .find(|o| o.id == "listContacts")
        .expect("list");
    let schema = &list.input_schema;
    assert_eq!(schema["properties"]["limit"]["maximum"], 100);
    assert_eq!(schema["properties"]["tag"]["type"], "array");
    assert!(
        schema["properties"].get("session").is_none(),
        "cookies are not sent"
    );
    assert!(
        list.description.starts_with("List contacts")
            && list.description.ends_with("GET /contacts")
    );

    let create = imported
        .operations
        .iter()
        .find(|o| o.id == "createContact")
        .expect("create");
    let body = &create.input_schema["properties"]["body"];
    assert_eq!(
        body["properties"]["email"]["type"],
        json!(["string", "null"])
    );
    assert!(body["properties"]["manager"]["description"]
        .as_str()
        .expect("nested")
        .contains("Contact"));
    assert_eq!(create.input_schema["required"], json!(["body"]));
    let get = imported
        .operations
        .iter()
        .find(|o| o.id == "getContact")
        .expect("get");
    assert_eq!(get.input_schema["required"], json!(["id"]));
    assert_eq!(
        get.input_schema["properties"]["id"]["description"],
        "The contact id"
    );
    // Every schema compiles as JSON Schema (the runtime validates arguments with it).
    for op in &imported.operations {
        assert!(jsonschema_compiles(&op.input_schema), "{}", op.id);
    }
}

fn jsonschema_compiles(schema: &Value) -> bool {
    jsonschema::validator_for(schema).is_ok()
}

#[test]
fn openapi_3_1_json_documents_import_too() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1"},
        "paths": {"/items/{id}": {"patch": {
            "operationId": "patchItem",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "requestBody": {"content": {"application/merge-patch+json": {"schema": {
                "$ref": "#/components/schemas/Item", "description": "Fields to change"}}}}
        }}},
        "components": {"schemas": {"Item": {"type": "object", "properties": {"note": {"type": ["string", "null"]}}}}}
    });
    let imported = import(&doc).expect("3.1");
    let op = &imported.operations[0];
    assert!(!op.idempotent());
    assert_eq!(
        op.input_schema["properties"]["body"]["description"],
        "Fields to change"
    );
    assert_eq!(
        op.input_schema["properties"]["body"]["properties"]["note"]["type"],
        json!(["string", "null"])
    );
}

#[test]
fn documents_that_cannot_be_used_are_refused_saying_why() {
    let cases = [
        (json!("{not json: [ nor yaml"), "neither JSON nor YAML"),
        (json!({"swagger": "2.0", "paths": {}}), "Swagger 2.0"),
        (json!({"openapi": "4.0.0", "paths": {}}), "not supported"),
        (json!({"info": {}}), "no `openapi`"),
        (json!({"openapi": "3.0.0"}), "no `paths`"),
        (json!({"openapi": "3.0.0", "paths": {}}), "no operations"),
        (json!(42), "spec must be"),
        (
            json!({"openapi": "3.0.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}}}),
            "does not resolve",
        ),
        (
            json!({"openapi": "3.0.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "other.yaml#/P"}]}}}}),
            "outside the document",
        ),
        (
            json!({"openapi": "3.0.0", "paths": {"/a": {"get": {"operationId": "x"}}, "/b": {"get": {"operationId": "x"}}}}),
            "used twice",
        ),
        (
            json!({"openapi": "3.0.0", "paths": {"/a/{id}": {"get": {}}}}),
            "`id` is not declared",
        ),
        (
            json!({"openapi": "3.0.0", "paths": {"a": {"get": {}}}}),
            "start with `/`",
        ),
    ];
    for (doc, why) in cases {
        let err = import(&doc).expect_err(&doc.to_string());
        assert!(err.to_string().contains(why), "{doc}: {err}");
    }
}

#[tokio::test]
async fn operations_call_the_service_with_sealed_credentials() {
    let (addr, seen) = start_service().await;
    let f = fixture().await;
    let (stored, skipped) = f
        .services
        .register(
            &f.tenant,
            input(json!({
                "name": "crm", "spec": SPEC, "base_url": format!("http://127.0.0.1:{}/api", addr.port()),
                "auth": {"type": "bearer", "token": "tok-must-stay-secret"},
                "timeout_secs": 2, "max_response_bytes": 4096
            })), "key:test",
        )
        .await
        .expect("register");
    assert_eq!(skipped.len(), 1);
    assert!(!stored.config.to_string().contains("tok-must-stay-secret"));
    assert!(!stored
        .sealed
        .as_deref()
        .unwrap_or("")
        .contains("tok-must-stay-secret"));

    let provider = HttpProvider::new(f.services.clone());
    let tools = provider.resolve(&f.tenant, "crm").await.expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
    assert!(
        names.contains(&"crm__listContacts") && names.contains(&"crm__createContact"),
        "{names:?}"
    );
    let tool = |name: &str| tools.iter().find(|t| t.name() == name).expect(name).clone();
    let ctx = ctx(&f.tenant);

    let out = tool("crm__listContacts")
        .call(
            &ctx,
            json!({"limit": 5, "tag": ["a", "b c"], "X-Trace": "t-1"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert!(
        out.text.starts_with("HTTP 200 OK (application/json)"),
        "{}",
        out.text
    );
    assert!(out.text.contains("Ada"));
    assert!(
        out.text
            .contains(r#"["limit","5"],["tag","a"],["tag","b c"]"#),
        "{}",
        out.text
    );
    {
        let headers = seen.headers.lock().expect("lock");
        let last = headers.last().expect("request");
        assert_eq!(last["authorization"], "Bearer tok-must-stay-secret");
        assert_eq!(last["x-trace"], "t-1");
    }

    let out = tool("crm__createContact")
        .call(&ctx, json!({"body": {"name": "Grace", "email": null}}))
        .await;
    assert!(
        !out.is_error && out.text.starts_with("HTTP 201"),
        "{}",
        out.text
    );
    assert!(out.text.contains("Grace"));

    // A path argument cannot leave its segment.
    let out = tool("crm__getContact")
        .call(&ctx, json!({"id": "a/../b?x=1#y"}))
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(
        seen.paths.lock().expect("lock").last().map(String::as_str),
        Some("/api/contacts/a%2F..%2Fb%3Fx%3D1%23y")
    );
    assert!(out.text.contains(r#""id":"a/../b?x=1#y""#), "{}", out.text);
    // Nor climb out of the operation's path: dots pass encoding, so `..`
    // is refused, and an encoded `%2e%2e` stays literal text.
    let before = seen.paths.lock().expect("lock").len();
    for climb in ["..", "."] {
        let out = tool("crm__getContact")
            .call(&ctx, json!({"id": climb}))
            .await;
        assert!(
            out.is_error && out.text.contains("may not be `.` or `..`"),
            "{climb}: {}",
            out.text
        );
    }
    let out = tool("crm__getContact")
        .call(&ctx, json!({"id": "%2e%2e"}))
        .await;
    assert!(!out.is_error, "{}", out.text);
    let paths = seen.paths.lock().expect("lock").clone();
    assert_eq!(paths.len(), before + 1, "{paths:?}");
    assert_eq!(
        paths.last().map(String::as_str),
        Some("/api/contacts/%252e%252e")
    );

    let out = tool("crm__big").call(&ctx, json!({})).await;
    assert!(
        out.text
            .contains("[response cut: the first 4096 bytes shown]"),
        "{}",
        &out.text[out.text.len() - 80..]
    );
    assert!(out.text.len() < 4096 + 200);

    let out = tool("crm__image").call(&ctx, json!({})).await;
    assert!(
        out.text.contains("[4 bytes of image/png, not shown]"),
        "{}",
        out.text
    );

    let out = tool("crm__fail").call(&ctx, json!({})).await;
    assert!(
        out.is_error && out.text.contains("HTTP 500") && out.text.contains("db down"),
        "{}",
        out.text
    );

    let out = tool("crm__get_redirect-in").call(&ctx, json!({})).await;
    assert!(
        !out.is_error && out.text.contains("Ada"),
        "a redirect on the same host is followed: {}",
        out.text
    );
    let before = seen.headers.lock().expect("lock").len();
    let out = tool("crm__redirectOut").call(&ctx, json!({})).await;
    assert!(
        out.is_error && out.text.contains("`localhost`") && out.text.contains("refused"),
        "{}",
        out.text
    );
    assert_eq!(
        seen.headers.lock().expect("lock").len(),
        before,
        "the other host was never reached"
    );

    let started = Instant::now();
    let out = tool("crm__slow").call(&ctx, json!({})).await;
    assert!(
        out.is_error && out.text.contains("no answer within 2s"),
        "{}",
        out.text
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // One operation alone, and entries that name nothing.
    let one = provider
        .resolve(&f.tenant, "crm/getContact")
        .await
        .expect("one");
    assert_eq!(one.len(), 1);
    assert!(provider.resolve(&f.tenant, "crm/nope").await.is_err());
    assert!(provider.check(&f.tenant, "nope").await.is_err());
    assert!(provider.check(&f.tenant, "crm/createContact").await.is_ok());

    f.services
        .remove(&f.tenant, "crm", "key:test")
        .await
        .expect("remove");
    assert!(f
        .store
        .get_integration(&f.tenant, "http", "crm")
        .await
        .expect("get")
        .is_none());
}

#[tokio::test]
async fn api_keys_go_in_their_header_and_operations_can_be_limited() {
    let (addr, seen) = start_service().await;
    let f = fixture().await;
    f.services
        .register(
            &f.tenant,
            input(json!({
                "name": "crm", "spec": SPEC, "base_url": format!("http://127.0.0.1:{}/api", addr.port()),
                "auth": {"type": "api_key", "header": "X-API-Key", "value": "k-123"},
                "operations": ["listContacts"]
            })), "key:test",
        )
        .await
        .expect("register");
    let tools = HttpProvider::new(f.services.clone())
        .resolve(&f.tenant, "crm")
        .await
        .expect("tools");
    assert_eq!(tools.len(), 1);
    let out = tools[0].call(&ctx(&f.tenant), json!({})).await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(
        seen.headers.lock().expect("lock").last().expect("request")["x-api-key"],
        "k-123"
    );
}

#[tokio::test]
async fn registrations_that_cannot_work_are_refused() {
    let f = fixture().await;
    let cases = [
        (
            json!({"name": "a", "spec": SPEC, "base_url": "http://127.0.0.1:1/api", "allow_hosts": ["example.com"]}),
            "not in allow_hosts",
        ),
        (
            json!({"name": "a", "spec": SPEC, "base_url": "ftp://127.0.0.1/api"}),
            "http:// or https://",
        ),
        (
            json!({"name": "a", "spec": SPEC, "base_url": "/api"}),
            "not an absolute URL",
        ),
        (
            json!({"name": "a", "spec": {"openapi": "3.0.0", "paths": {"/x": {"get": {}}}}}),
            "names no server URL",
        ),
        (
            json!({"name": "a", "spec": SPEC, "operations": ["nope"]}),
            "no operation `nope`",
        ),
        (
            json!({"name": "a", "spec": SPEC, "auth": {"type": "bearer", "token": "bad\ntoken"}}),
            "bearer token",
        ),
        (
            json!({"name": "a", "spec": SPEC, "auth": {"type": "api_key", "header": "bad header", "value": "v"}}),
            "invalid header name",
        ),
        (json!({"name": "Bad", "spec": SPEC}), "invalid name"),
        (
            json!({"name": "a", "spec": SPEC, "timeout_secs": 0}),
            "timeout_secs",
        ),
        (
            json!({"name": "a", "spec": "swagger: '2.0'"}),
            "Swagger 2.0",
        ),
    ];
    for (body, why) in cases {
        let err = f
            .services
            .register(&f.tenant, input(body.clone()), "key:test")
            .await
            .expect_err(&body.to_string());
        assert!(err.to_string().contains(why), "{body}: {err}");
    }
    assert!(f
        .store
        .list_integrations(&f.tenant, "http")
        .await
        .expect("list")
        .is_empty());
    let local = json!({"name": "a", "spec": SPEC, "base_url": "http://127.0.0.1:1/api"});
    f.services
        .register(&f.tenant, input(local.clone()), "key:test")
        .await
        .expect("first");
    let err = f
        .services
        .register(&f.tenant, input(local), "key:test")
        .await
        .expect_err("taken");
    assert!(err.to_string().contains("exists"), "{err}");
}
