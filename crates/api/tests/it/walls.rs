//! Through the API, with a tenant's ordinary key (not the admin's): no
//! host command of its own, no argument smuggled into a catalogue entry,
//! no SQLite file of the data directory, no connection to loopback, the
//! metadata service, private ranges or Roster's own listener. Each attempt
//! is refused with a clear error and a stable code, nothing is stored or
//! run or read, and every integration change that did happen is in the
//! audit log with its actor.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Client, TestApp, Walls};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// A key of the default tenant made by the admin: ordinary, all scopes.
async fn tenant_key(app: &TestApp) -> (Client, String) {
    let made = app
        .admin()
        .post("/v1/keys", json!({"name": "ann"}))
        .await
        .ok(201)
        .clone();
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    (app.with_key(&key), format!("key:{id}"))
}

fn catalogue() -> roster_mcp::Catalogue {
    let entry: roster_mcp::CatalogueEntry = serde_json::from_value(json!({
        "description": "Prints a word (a harmless stand-in for a real server)",
        "command": "sh",
        "args": ["-c", "exec echo \"$0\"", "{word}"],
        "placeholders": {"word": {"pattern": "[a-z]+( [a-z]+)?", "description": "one or two words"}},
        "env": ["WORD_TOKEN"]
    }))
    .unwrap();
    let mut entries = BTreeMap::new();
    entries.insert("echo".to_owned(), entry);
    roster_mcp::Catalogue::new(entries, &[]).unwrap()
}

async fn listed(client: &Client, path: &str) -> usize {
    client.get(path).await.ok(200)["data"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_tenant_key_cannot_run_a_command_or_smuggle_arguments() {
    let app = TestApp::start_configured(Walls {
        catalogue: catalogue(),
        ..Walls::default()
    })
    .await;
    let (tenant, _) = tenant_key(&app).await;
    let marker = app.data_dir().join("pwned");
    let stolen = app.data_dir().join("roster.db");
    let evil = json!({
        "name": "evil", "command": "sh",
        "args": ["-c", format!("id > {m}; cat {s} >> {m}", m = marker.display(), s = stolen.display())]
    });
    let refused = tenant.post("/v1/mcp/servers", evil.clone()).await;
    refused.err(403, "mcp_command_needs_admin");
    assert!(refused.text.contains("catalogue"), "{}", refused.text);
    // Nothing ran, nothing was stored, whatever is asked of it later.
    tenant
        .get("/v1/mcp/servers/evil/tools")
        .await
        .err(404, "not_found");
    assert!(!marker.exists());
    assert_eq!(listed(&tenant, "/v1/mcp/servers").await, 0);
    let audit = app.admin().get("/v1/audit?limit=50").await.ok(200).clone();
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "mcp.add"
                && e["resource"] == "mcp:evil"
                && e["decision"] == "deny"
                && e["detail"]["code"] == "mcp_command_needs_admin"),
        "the refused command is on the record: {audit}"
    );

    // What the operator offers is listed without the host's layout.
    let offered = tenant.get("/v1/mcp/catalogue").await.ok(200).clone();
    assert_eq!(offered["data"][0]["name"], "echo");
    assert_eq!(offered["data"][0]["placeholders"][0]["name"], "word");
    assert_eq!(offered["data"][0]["placeholders"][0]["required"], true);
    assert_eq!(offered["data"][0]["env"], json!(["WORD_TOKEN"]));
    assert!(!offered.to_string().contains("exec echo"), "{offered}");

    for (body, why) in [
        (
            json!({"name": "inj", "from": "echo", "set": {"word": "--evil"}}),
            "starts with `-`",
        ),
        (
            json!({"name": "inj", "from": "echo", "set": {"word": "; sh"}}),
            "does not match",
        ),
        (
            json!({"name": "inj", "from": "echo", "set": {"word": "a\nb"}}),
            "control character",
        ),
        (
            json!({"name": "inj", "from": "echo", "set": {"word": "one two three"}}),
            "does not match",
        ),
        (
            json!({"name": "inj", "from": "echo", "set": {"word": "a", "extra": "b"}}),
            "no placeholder `extra`",
        ),
        (
            json!({"name": "inj", "from": "echo"}),
            "needs a value for `word`",
        ),
        (
            json!({"name": "inj", "from": "echo", "set": {"word": "a"}, "args": ["-c", "id"]}),
            "fixes its command",
        ),
        (
            json!({"name": "inj", "from": "echo", "set": {"word": "a"}, "env": {"LD_PRELOAD": "/x.so"}}),
            "WORD_TOKEN",
        ),
        (json!({"name": "inj", "from": "nope"}), "offers: echo"),
    ] {
        let answer = tenant.post("/v1/mcp/servers", body.clone()).await;
        answer.err(400, "invalid_request");
        assert!(answer.text.contains(why), "{body}: {}", answer.text);
    }
    assert_eq!(listed(&tenant, "/v1/mcp/servers").await, 0);
    // The admin key may register a command; stdio servers need bubblewrap.
    let admin = app
        .admin()
        .post("/v1/mcp/servers", json!({"name": "own", "command": "sh"}))
        .await;
    if roster_testkit::peers::have_bwrap() {
        admin.ok(201);
    } else {
        admin.err(503, "sandbox_unavailable");
    }
}

#[tokio::test]
async fn sqlite_sources_never_read_the_data_directory() {
    let app = TestApp::start().await;
    let (tenant, _) = tenant_key(&app).await;
    let data = app.data_dir();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(data.join("roster.db"), elsewhere.path().join("link.db")).unwrap();
    let name = data.file_name().unwrap().to_str().unwrap();
    let dotdot = elsewhere.path().join("..").join(name).join("roster.db");
    for path in [
        data.join("roster.db"),
        dotdot,
        elsewhere.path().join("link.db"),
    ] {
        let answer = tenant
            .post(
                "/v1/sources/sql",
                json!({"name": "spy", "url": format!("sqlite:{}", path.display()), "allow": ["api_keys", "items"]}),
            )
            .await;
        answer.err(403, "path_not_allowed");
        assert!(!answer.text.contains("key_hash"), "{}", answer.text);
    }
    let audit = app.admin().get("/v1/audit?limit=50").await.ok(200).clone();
    let refused = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sql.add" && e["decision"] == "deny")
        .filter(|e| e["detail"]["code"] == "path_not_allowed")
        .count();
    assert_eq!(refused, 3, "{audit}");
    assert_eq!(listed(&tenant, "/v1/sources/sql").await, 0);
    tenant
        .post(
            "/v1/sources/sql/spy/query",
            json!({"query": "SELECT * FROM api_keys"}),
        )
        .await
        .err(404, "not_found");
}

#[tokio::test]
async fn connections_to_loopback_metadata_private_ranges_and_roster_are_refused() {
    // The egress policy as an operator would leave it: nothing private open.
    let app = TestApp::start_configured(Walls {
        egress_allow: Vec::new(),
        ..Walls::default()
    })
    .await;
    let (tenant, actor) = tenant_key(&app).await;
    let own = app.url.trim_start_matches("http://").to_owned();
    let own_port = own.rsplit(':').next().unwrap().to_owned();
    // This machine's address on its outward interface, where the listener
    // (and any other service on all interfaces) answers too.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let outward = probe
        .connect("192.0.2.200:9")
        .and_then(|()| probe.local_addr())
        .map(|a| a.ip())
        .ok();
    let spec = json!({"openapi": "3.0.3", "info": {"title": "x", "version": "1"},
        "paths": {"/x": {"get": {"operationId": "x", "responses": {"200": {"description": "ok"}}}}}});
    for host in [
        own.clone(),
        format!("localhost:{own_port}"),
        format!("[::1]:{own_port}"),
        format!("127.1:{own_port}"),
        format!("0x7f.1:{own_port}"),
        "169.254.169.254".into(),
        "10.0.0.1".into(),
        "192.168.0.10:8080".into(),
        "[fd00::1]".into(),
    ]
    .into_iter()
    .chain(outward.map(|ip| format!("{ip}:{own_port}")))
    {
        let answer = tenant
            .post(
                "/v1/sources/http",
                json!({"name": "spy", "spec": spec, "base_url": format!("http://{host}/v1")}),
            )
            .await;
        answer.err(403, "egress_denied");
        let answer = tenant
            .post(
                "/v1/mcp/servers",
                json!({"name": "spy", "url": format!("http://{host}/mcp")}),
            )
            .await;
        answer.err(403, "egress_denied");
        let answer = tenant
            .post(
                "/v1/sources/sql",
                json!({"name": "spy", "url": format!("postgres://postgres@{host}/roster"), "allow": ["api_keys"]}),
            )
            .await;
        answer.err(403, "egress_denied");
        assert!(answer.text.contains("[egress] allow"), "{}", answer.text);
    }
    assert_eq!(listed(&tenant, "/v1/sources/http").await, 0);
    assert_eq!(listed(&tenant, "/v1/mcp/servers").await, 0);
    assert_eq!(listed(&tenant, "/v1/sources/sql").await, 0);
    // Every refusal is on the record, with its actor and reason.
    let audit = app.admin().get("/v1/audit?limit=200").await.ok(200).clone();
    let refused: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == actor.as_str() && e["decision"] == "deny")
        .collect();
    let attempts = if outward.is_some() { 10 } else { 9 };
    assert_eq!(refused.len(), attempts * 3, "{audit}");
    for kind in ["http", "mcp", "sql"] {
        assert!(
            refused.iter().any(|e| e["action"] == format!("{kind}.add")
                && e["resource"] == format!("{kind}:spy")
                && e["detail"]["code"] == "egress_denied"),
            "{kind}: {audit}"
        );
    }
}

#[tokio::test]
async fn roster_itself_stays_closed_when_the_allow_list_opens_loopback() {
    let app = TestApp::start().await; // allows 127.0.0.1, protects the app's port
    let (tenant, _) = tenant_key(&app).await;
    let answer = tenant
        .post(
            "/v1/mcp/servers",
            json!({"name": "me", "url": format!("{}/v1/keys", app.url)}),
        )
        .await;
    answer.err(403, "egress_denied");
    assert!(
        answer.text.contains("Roster's own listener"),
        "{}",
        answer.text
    );
}

fn actions(audit: &Value, actor: &str) -> Vec<(String, String)> {
    audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == actor)
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_integration_change_is_audited_with_its_actor() {
    let app = TestApp::start_configured(Walls {
        catalogue: catalogue(),
        ..Walls::default()
    })
    .await;
    let (tenant, actor) = tenant_key(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crm.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE accounts (id INTEGER);")
        .unwrap();
    tenant
        .post("/v1/sources/sql", json!({"name": "crm", "url": format!("sqlite:{}", db.display()), "allow": ["accounts"]}))
        .await
        .ok(201);
    tenant.delete("/v1/sources/sql/crm").await.ok(204);
    let spec = json!({"openapi": "3.0.3", "info": {"title": "x", "version": "1"},
        "paths": {"/x": {"get": {"operationId": "x", "responses": {"200": {"description": "ok"}}}}}});
    tenant
        .post(
            "/v1/sources/http",
            json!({"name": "tickets", "spec": spec, "base_url": "http://127.0.0.1:9/api"}),
        )
        .await
        .ok(201);
    tenant.delete("/v1/sources/http/tickets").await.ok(204);
    tenant
        .post("/v1/mcp/servers", json!({"name": "remote", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer secret-header"}}))
        .await
        .ok(201);
    tenant.delete("/v1/mcp/servers/remote").await.ok(204);
    let bwrap = roster_testkit::peers::have_bwrap();
    if bwrap {
        tenant
            .post("/v1/mcp/servers", json!({"name": "words", "from": "echo", "set": {"word": "hello"}, "env": {"WORD_TOKEN": "tok-secret"}}))
            .await
            .ok(201);
        tenant.delete("/v1/mcp/servers/words").await.ok(204);
    }
    // A refused registration is on the record (decision `deny`); a
    // removal of nothing leaves no row.
    tenant
        .post("/v1/mcp/servers", json!({"name": "evil", "command": "sh"}))
        .await
        .err(403, "mcp_command_needs_admin");
    tenant
        .delete("/v1/mcp/servers/remote")
        .await
        .err(404, "not_found");

    let audit = app.admin().get("/v1/audit?limit=100").await.ok(200).clone();
    let mut expected = vec![
        ("sql.add", "sql:crm"),
        ("sql.remove", "sql:crm"),
        ("http.add", "http:tickets"),
        ("http.remove", "http:tickets"),
        ("mcp.add", "mcp:remote"),
        ("mcp.remove", "mcp:remote"),
    ];
    if bwrap {
        expected.extend([("mcp.enable", "mcp:words"), ("mcp.remove", "mcp:words")]);
    }
    expected.push(("mcp.add", "mcp:evil"));
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(a, r)| (a.to_owned(), r.to_owned()))
        .collect();
    assert_eq!(actions(&audit, &actor), expected, "{audit}");
    // The rows hold what changed, never a credential.
    assert!(!audit.to_string().contains("secret-header"), "{audit}");
    assert!(!audit.to_string().contains("tok-secret"), "{audit}");
    let enabled = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "mcp.enable");
    if let Some(enabled) = enabled {
        assert_eq!(enabled["detail"]["values"]["word"], "hello", "{enabled}");
        assert_eq!(enabled["detail"]["env"], json!(["WORD_TOKEN"]), "{enabled}");
    }
    assert!(!Path::new(&app.data_dir().join("mcp"))
        .join("words")
        .exists());
}
