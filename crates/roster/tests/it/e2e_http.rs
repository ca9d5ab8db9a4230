//! End to end: with the real binary, a user imports an OpenAPI document
//! through the CLI, an agent calls one of its operations, the service sees
//! the stored bearer token, and the token never comes back or sits in the
//! database file in clear.

use crate::common;

use axum::http::HeaderMap;
use axum::routing::get;
use common::{cli, Server};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "tok-must-stay-secret";

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: Orders, version: "1"}
paths:
  /orders/{id}:
    get:
      operationId: getOrder
      summary: One order by id
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
      responses: {"200": {description: ok}}
  /upload:
    post:
      operationId: upload
      requestBody: {content: {application/octet-stream: {schema: {type: string, format: binary}}}}
      responses: {"200": {description: ok}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_calls_an_operation_imported_from_openapi() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = seen.clone();
    let service = axum::Router::new()
        .route("/openapi.yaml", get(|| async { SPEC }))
        .route(
            "/orders/{id}",
            get(
                move |headers: HeaderMap, axum::extract::Path(id): axum::extract::Path<u32>| {
                    let recorded = recorded.clone();
                    async move {
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        recorded.lock().expect("lock").push(auth);
                        axum::Json(json!({"id": id, "status": "shipped", "carrier": "DHL"}))
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, service).await;
    });

    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("orders.yaml");
    std::fs::write(&spec, SPEC).expect("spec");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "swagger: '2.0'\npaths: {}\n").expect("bad spec");
    let data = dir.path().join("data");
    // The operator opens the test's service on this machine's loopback.
    let walls = [("ROSTER_EGRESS_ALLOW", "127.0.0.1")];
    let server = Server::start(&data, &model.openai_base_url(), &walls).await;
    let api = server.client();
    let base = format!("http://127.0.0.1:{port}");

    let (ok, out, err) = cli(
        &server,
        &[
            "source",
            "add-openapi",
            "shop",
            "--spec",
            spec.to_str().expect("path"),
            "--base-url",
            &base,
            "--bearer-token",
            TOKEN,
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("added HTTP service shop (1 operations"),
        "{out}"
    );
    assert!(out.contains("left out: upload"), "{out}");
    let (ok, out, err) = cli(&server, &["source", "show", "shop"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("shop__getOrder") && out.contains("GET /orders/{id}"),
        "{out}"
    );
    assert!(
        out.contains("bearer token (stored encrypted)") && !out.contains(TOKEN),
        "{out}"
    );
    // The document may also come from a URL.
    let (ok, out, err) = cli(
        &server,
        &[
            "source",
            "add-openapi",
            "shop2",
            "--spec",
            &format!("{base}/openapi.yaml"),
            "--base-url",
            &base,
        ],
    );
    assert!(ok && out.contains("added HTTP service shop2"), "{out}{err}");
    let (ok, _, err) = cli(
        &server,
        &[
            "source",
            "add-openapi",
            "shop3",
            "--spec",
            &format!("{base}/missing.yaml"),
        ],
    );
    assert!(!ok && err.contains("HTTP 404"), "{err}");
    let (ok, out, _) = cli(&server, &["source", "list"]);
    assert!(ok && out.contains("shop") && out.contains("http"), "{out}");

    let (ok, _, err) = cli(
        &server,
        &[
            "source",
            "add-openapi",
            "old",
            "--spec",
            bad.to_str().expect("path"),
            "--base-url",
            &base,
        ],
    );
    assert!(
        !ok && err.contains("Swagger 2.0") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = cli(
        &server,
        &[
            "source",
            "add-openapi",
            "x",
            "--spec",
            spec.to_str().expect("path"),
            "--base-url",
            &base,
            "--allow-host",
            "example.com",
        ],
    );
    assert!(!ok && err.contains("not in allow_hosts"), "{err}");
    let (status, body) = api
        .post("/v1/sources/http", json!({"name": "x", "spec": "{"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");

    let (status, agent) = api
        .post(
            "/v1/agents",
            json!({"name": "support", "instructions": "Track orders.", "model": "openai/m", "tools": ["http:shop/getOrder"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (status, body) = api
        .post("/v1/agents", json!({"name": "bad", "instructions": "x", "model": "openai/m", "tools": ["http:shop/upload"]}))
        .await;
    assert_eq!(status, 400, "an operation left out is not a tool: {body}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "support"})).await;
    let sid = session["id"].as_str().expect("session").to_owned();
    model.push(Reply::tool_call("c1", "shop__getOrder", r#"{"id": 42}"#));
    model.push(Reply::tool_call(
        "c2",
        "shop__getOrder",
        r#"{"id": "not a number"}"#,
    ));
    model.push(Reply::text("Order 42 has shipped with DHL."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Where is order 42?"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["run"]["status"], "completed", "{result}");
    let text = result.to_string();
    assert!(
        text.contains("HTTP 200 OK") && text.contains("shipped"),
        "{text}"
    );
    assert!(
        text.contains("invalid arguments"),
        "the schema was enforced: {text}"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [format!("Bearer {TOKEN}")],
        "one valid call reached the service"
    );
    let offered = &model.requests()[0].body["tools"];
    assert_eq!(
        offered[0]["function"]["name"], "shop__getOrder",
        "{offered}"
    );
    assert_eq!(
        offered[0]["function"]["parameters"]["properties"]["id"]["type"],
        "integer"
    );

    let (_, shown) = api.get("/v1/sources/http/shop").await;
    assert!(!shown.to_string().contains(TOKEN));
    for file in ["roster.db", "roster.db-wal"] {
        let Ok(bytes) = std::fs::read(data.join(file)) else {
            continue;
        };
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "{file}"
        );
    }
    // A large document (real ones run to megabytes) is accepted.
    let mut paths = serde_json::Map::new();
    for i in 0..3000 {
        paths.insert(
            format!("/things/{i}"),
            json!({"get": {"operationId": format!("getThing{i}"), "description": "x".repeat(1000),
                "responses": {"200": {"description": "ok"}}}}),
        );
    }
    let big = json!({"openapi": "3.0.3", "info": {"title": "Big", "version": "1"}, "paths": paths});
    assert!(big.to_string().len() > 3_000_000);
    let (status, body) = api
        .post(
            "/v1/sources/http",
            json!({"name": "big", "spec": big, "base_url": base}),
        )
        .await;
    assert_eq!(
        status,
        201,
        "{}",
        &body.to_string()[..200.min(body.to_string().len())]
    );
    assert_eq!(body["operations"].as_array().map(Vec::len), Some(3000));

    let (ok, _, err) = cli(&server, &["source", "remove", "shop"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&server, &["source", "remove", "shop"]);
    assert!(!ok && err.contains("no source `shop`"), "{err}");
}
