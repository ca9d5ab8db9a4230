//! Roster as an MCP server, end to end: the real binary's `/mcp`, driven by
//! the real clients unmodified — Python's `mcp` package (its default `auto`
//! mode, which speaks the stateless 2026-07-28 revision, and its `legacy`
//! mode, the `initialize` handshake) and the MCP Inspector's CLI from npm —
//! with the fake model server behind the agents. Then, over plain HTTP,
//! what no client would send: other tenants' and users' agents and
//! sessions, missing scopes, bad keys and bad arguments.
//!
//! Needs Python's `mcp` (2.x) and `ROSTER_TEST_MCP_INSPECTOR` (see
//! `.ci/run`); each test that lacks its client is skipped with a notice,
//! except in CI, where it fails.

use crate::common;

use common::{Api, Server, ADMIN_KEY};
use roster_testkit::peers::{mcp_inspector, python_mcp};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Answers as an agent that remembers what it was told earlier in the
/// conversation: only if the runtime sent the first exchange with the
/// second request can the second answer name the user.
fn remembering_model() -> impl Fn(&Value) -> Reply + Send + Sync + 'static {
    |body: &Value| {
        let texts: Vec<String> = body["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|m| m["content"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let last = texts.last().cloned().unwrap_or_default();
        let told = texts
            .iter()
            .find_map(|t| t.strip_prefix("My name is "))
            .map(|rest| rest.trim_end_matches('.').to_owned());
        if last.starts_with("My name is ") {
            Reply::text(format!("Nice to meet you, {}.", told.unwrap_or_default()))
        } else if last.contains("What is my name") {
            match told {
                Some(name) => Reply::text(format!("Your name is {name}.")),
                None => Reply::text("I do not know your name."),
            }
        } else {
            Reply::text(format!("You said: {last}"))
        }
    }
}

/// A server with agent `helper`, a knowledge document and a memory of the
/// user `ada`, both found by the search index.
async fn serve(dir: &Path, model: &FakeModelServer) -> Server {
    let server = Server::start(&dir.join("data"), &model.openai_base_url(), &[]).await;
    let admin = server.client();
    let (status, body) = admin
        .post(
            "/v1/agents",
            json!({
                "name": "helper",
                "description": "Answers questions and remembers the conversation.",
                "instructions": "Be brief.",
                "model": "openai/gpt-4.1-mini",
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin
        .post("/v1/knowledge/sources", json!({"name": "handbook"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let put = admin
        .http
        .put(format!(
            "{}/v1/knowledge/sources/handbook/documents/leave.md",
            server.url
        ))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "text/markdown")
        .body("# Leave\n\nParents get sixteen weeks of paid parental leave.\n")
        .send()
        .await
        .expect("put document");
    assert_eq!(put.status(), 200);
    let (status, body) = admin
        .post(
            "/v1/memories",
            json!({"namespace": "users/ada", "content": "Ada drinks green tea every morning."}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The index follows the store; wait until both searches find their row.
    common::until("the index", Duration::from_secs(30), async || {
        let (_, k) = admin
            .post("/v1/knowledge/search", json!({"query": "parental leave"}))
            .await;
        let (_, m) = admin
            .post(
                "/v1/memories/search",
                json!({"query": "green tea", "namespace": "users/ada"}),
            )
            .await;
        let found = |v: &Value| v["data"].as_array().is_some_and(|d| !d.is_empty());
        (found(&k) && found(&m)).then_some(())
    })
    .await;
    server
}

/// A key made by the admin key: `{"tenant", "name", "user", "scopes", …}`.
async fn key(admin: &Api, body: Value) -> String {
    let (status, made) = admin.post("/v1/keys", body).await;
    assert_eq!(status, 201, "{made}");
    made["key"].as_str().expect("key").to_owned()
}

const PYTHON_CLIENT: &str = r#"
import asyncio, json, sys
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

URL, KEY, ADMIN, MODE = sys.argv[1:5]
API = URL.rsplit("/mcp", 1)[0]

def shown(result):
    return {
        "text": [c.text for c in result.content if getattr(c, "type", "") == "text"],
        "structured": result.structured_content,
        "error": bool(result.is_error),
    }

async def names(client):
    return sorted(t.name for t in (await client.list_tools()).tools)

async def main():
    out = {}
    admin = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ADMIN}"})
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=httpx2.Timeout(30.0, read=300.0),
    )
    async with admin, http:
        async with Client(streamable_http_client(URL, http_client=http), mode=MODE) as client:
            out["protocol"] = client.protocol_version
            out["server"] = client.server_info.name if client.server_info else None
            listed = (await client.list_tools()).tools
            out["tools"] = sorted(t.name for t in listed)
            out["ask_schema"] = next(t.input_schema for t in listed if t.name == "ask_helper")
            first = await client.call_tool("ask_helper", {"message": "My name is Ada."})
            out["first"] = shown(first)
            session = first.structured_content["session"]
            out["second"] = shown(await client.call_tool(
                "continue_session", {"session": session, "message": "What is my name?"}))
            out["third"] = shown(await client.call_tool(
                "ask_helper", {"session": session, "message": "What is my name, again?"}))
            out["fresh"] = shown(await client.call_tool(
                "ask_helper", {"message": "What is my name?"}))
            out["knowledge"] = shown(await client.call_tool(
                "knowledge_search", {"query": "parental leave"}))
            out["memory"] = shown(await client.call_tool("memory_search", {"query": "green tea"}))
            out["unknown_session"] = shown(await client.call_tool(
                "continue_session", {"session": "ses_nope", "message": "hi"}))
            # The list follows the tenant's agents, on the same connection.
            r = await admin.post(API + "/v1/agents", json={
                "name": "scribe", "instructions": "Write.", "model": "openai/gpt-4.1-mini"})
            assert r.status_code == 201, r.text
            out["after_create"] = await names(client)
            r = await admin.delete(API + "/v1/agents/scribe")
            assert r.status_code == 204, r.text
            out["after_delete"] = await names(client)
    print(json.dumps(out))

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_asks_an_agent_continues_its_session_and_searches() {
    let Some(python) = python_mcp() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let model = FakeModelServer::start().await;
    model.respond_with(remembering_model());
    let server = serve(dir.path(), &model).await;
    let admin = server.client();
    let ada = key(
        &admin,
        json!({"name": "ada's laptop", "kind": "user", "user": "ada"}),
    )
    .await;
    let script = dir.path().join("client.py");
    std::fs::write(&script, PYTHON_CLIENT).expect("script");
    let url = format!("{}/mcp", server.url);

    for (mode, protocol) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let asked_before = model.request_count();
        let out = tokio::process::Command::new(&python.executable)
            .arg(&script)
            .args([url.as_str(), ada.as_str(), ADMIN_KEY, mode])
            .output()
            .await
            .expect("run python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_str(stdout.trim()).expect("the client's report");
        assert_eq!(got["protocol"], protocol, "{mode}: {got}");
        assert_eq!(got["server"], "roster", "{mode}");
        assert_eq!(
            got["tools"],
            json!([
                "ask_helper",
                "continue_session",
                "knowledge_search",
                "memory_search"
            ]),
            "{mode}"
        );
        assert_eq!(got["ask_schema"]["required"], json!(["message"]), "{mode}");

        let first = &got["first"];
        assert_eq!(first["error"], false, "{mode}: {first}");
        assert_eq!(first["text"][0], "Nice to meet you, Ada.", "{mode}");
        let session = first["structured"]["session"].as_str().expect("session");
        assert!(session.starts_with("ses_"), "{first}");
        assert!(first["text"][1]
            .as_str()
            .is_some_and(|t| t.contains(session)));
        assert_eq!(first["structured"]["status"], "completed");
        assert_eq!(first["structured"]["output"], "Nice to meet you, Ada.");
        let run = first["structured"]["run"].as_str().expect("run");
        // The run is a real one of the key's user, in the session it named.
        let (status, shown) = admin.get(&format!("/v1/runs/{run}")).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["session_id"], session);
        let (_, stored) = admin.get(&format!("/v1/sessions/{session}")).await;
        assert_eq!(stored["user"], "ada", "{stored}");

        // The state is kept across calls: the agent remembers.
        for next in ["second", "third"] {
            let answer = &got[next];
            assert_eq!(answer["error"], false, "{mode} {next}: {answer}");
            assert_eq!(answer["text"][0], "Your name is Ada.", "{mode} {next}");
            assert_eq!(answer["structured"]["session"], session, "{mode} {next}");
        }
        let fresh = &got["fresh"];
        assert_eq!(fresh["text"][0], "I do not know your name.", "{mode}");
        assert_ne!(fresh["structured"]["session"], session, "{mode}");
        // …because the model was sent the first exchange with the second.
        let asked = model.requests();
        let second = &asked[asked_before + 1].body["messages"];
        let said: Vec<&str> = second
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert!(
            said.contains(&"My name is Ada.") && said.contains(&"Nice to meet you, Ada."),
            "{mode}: {second}"
        );

        let knowledge = &got["knowledge"];
        assert_eq!(knowledge["error"], false, "{mode}: {knowledge}");
        assert!(
            knowledge["structured"]["data"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("sixteen weeks")),
            "{mode}: {knowledge}"
        );
        let memory = &got["memory"];
        assert_eq!(memory["error"], false, "{mode}: {memory}");
        assert_eq!(
            memory["structured"]["data"][0]["record"]["content"],
            "Ada drinks green tea every morning.",
            "{mode}: {memory}"
        );
        let unknown = &got["unknown_session"];
        assert_eq!(unknown["error"], true, "{mode}: {unknown}");
        assert!(
            unknown["text"][0]
                .as_str()
                .is_some_and(|t| t.starts_with("not_found")),
            "{unknown}"
        );
        assert!(
            got["after_create"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("ask_scribe"))),
            "{mode}: {got}"
        );
        assert!(
            !got["after_delete"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("ask_scribe"))),
            "{mode}: {got}"
        );
    }
}

/// Runs the inspector's CLI against `url` with `key`; (success, stdout,
/// stderr). Its home is `home`, so it reads and writes no real user's
/// catalogue or stored logins, and it never starts an interactive OAuth.
async fn inspector(
    cli: &Path,
    home: &Path,
    url: &str,
    key: &str,
    args: &[&str],
) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(cli)
            .args(["--cli", url, "--transport", "http", "--format", "json"])
            .args(["--stored-auth-only", "--header"])
            .arg(format!("Authorization: Bearer {key}"))
            .args(args)
            .env("HOME", home)
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the inspector finishes")
    .expect("run the inspector");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_inspector_lists_and_calls_the_agents() {
    let Some(cli) = mcp_inspector() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let model = FakeModelServer::start().await;
    model.respond_with(remembering_model());
    let server = Server::start(&dir.path().join("data"), &model.openai_base_url(), &[]).await;
    let admin = server.client();
    let (status, body) = admin
        .post(
            "/v1/agents",
            json!({"name": "helper", "instructions": "Be brief.", "model": "openai/gpt-4.1-mini"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = format!("{}/mcp", server.url);

    // The inspector's default era is legacy (the `initialize` handshake);
    // `auto` tries the stateless revision first.
    for era in ["legacy", "auto"] {
        let (ok, out, err) = inspector(
            &cli,
            &home,
            &url,
            ADMIN_KEY,
            &["--protocol-era", era, "--method", "tools/list"],
        )
        .await;
        assert!(ok, "{era}: {out}\n{err}");
        let listed: Value = serde_json::from_str(out.trim()).expect("JSON");
        let names: Vec<&str> = listed["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            names.contains(&"ask_helper") && names.contains(&"continue_session"),
            "{era}: {listed}"
        );
    }

    let (ok, out, err) = inspector(
        &cli,
        &home,
        &url,
        ADMIN_KEY,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "ask_helper",
            "--tool-arg",
            "message=My name is Grace.",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let called: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(
        called["result"]["content"][0]["text"], "Nice to meet you, Grace.",
        "{called}"
    );
    let session = called["result"]["structuredContent"]["session"]
        .as_str()
        .expect("session")
        .to_owned();
    let (ok, out, err) = inspector(
        &cli,
        &home,
        &url,
        ADMIN_KEY,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "continue_session",
            "--tool-arg",
            &format!("session={session}"),
            "--tool-arg",
            "message=What is my name?",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let called: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(
        called["result"]["content"][0]["text"], "Your name is Grace.",
        "{called}"
    );

    // A bad key ends in a refusal, not in a login.
    let (ok, out, err) =
        inspector(&cli, &home, &url, "not-a-key", &["--method", "tools/list"]).await;
    assert!(!ok, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("unknown API key"),
        "{out}\n{err}"
    );
}

/// One JSON-RPC request to `/mcp` as a stateless legacy client sends it;
/// (HTTP status, the JSON-RPC answer or the HTTP body).
async fn rpc(server: &Server, key: Option<&str>, method: &str, params: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/mcp", server.url))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("post /mcp");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    // An SSE answer: the data line that carries the response.
    let body = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| m.get("id").is_some())
        .or_else(|| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

async fn tools(server: &Server, key: &str) -> Vec<String> {
    let (status, body) = rpc(server, Some(key), "tools/list", json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

async fn call(server: &Server, key: &str, tool: &str, arguments: Value) -> Value {
    let (status, body) = rpc(
        server,
        Some(key),
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The first text of a tool result that is an error.
fn refusal(answer: &Value) -> String {
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    answer["result"]["content"][0]["text"]
        .as_str()
        .expect("text")
        .to_owned()
}

/// Every session of the server, as the admin key sees them in its tenant.
async fn sessions(api: &Api) -> usize {
    let (_, listed) = api.get("/v1/sessions?limit=1000").await;
    listed["data"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reach_only_their_tenant_and_users_and_bad_input_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = FakeModelServer::start().await;
    model.respond_with(remembering_model());
    let server = Server::start(&dir.path().join("data"), &model.openai_base_url(), &[]).await;
    let admin = server.client();
    let agent = |name: &str| json!({"name": name, "instructions": "Be brief.", "model": "openai/gpt-4.1-mini"});
    for name in ["helper", "vault"] {
        let (status, body) = admin.post("/v1/agents", agent(name)).await;
        assert_eq!(status, 201, "{body}");
    }
    let ada = key(
        &admin,
        json!({"name": "ada", "kind": "user", "user": "ada"}),
    )
    .await;
    let bob = key(
        &admin,
        json!({"name": "bob", "kind": "user", "user": "bob"}),
    )
    .await;
    // Tenant B, with an agent of its own.
    let (status, tenant) = admin.post("/v1/tenants", json!({"name": "globex"})).await;
    assert_eq!(status, 201, "{tenant}");
    let globex = key(&admin, json!({"tenant": "globex", "name": "globex ops"})).await;
    let b_api = server.client_with_key(&globex);
    let (status, body) = b_api.post("/v1/agents", agent("rival")).await;
    assert_eq!(status, 201, "{body}");

    // No key, a bad key: 401, a Bearer challenge, the API's JSON error.
    for (key, challenge) in [
        (None, r#"Bearer realm="roster""#),
        (
            Some("not-a-key"),
            r#"Bearer realm="roster", error="invalid_token""#,
        ),
    ] {
        let mut request = reqwest::Client::new()
            .post(format!("{}/mcp", server.url))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("post");
        assert_eq!(response.status(), 401);
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(challenge)
        );
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        assert!(body.get("jsonrpc").is_none(), "{body}");
    }
    // A page of another site is refused; the server's own origin passes.
    let host = server.url.trim_start_matches("http://").to_owned();
    for (origin, status) in [("https://evil.example", 403), (server.url.as_str(), 200)] {
        let response = reqwest::Client::new()
            .post(format!("{}/mcp", server.url))
            .bearer_auth(&ada)
            .header("origin", origin)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), status, "{origin} at {host}");
    }
    // A GET stream is not offered (stateless), but asked with a key.
    let response = reqwest::Client::new()
        .get(format!("{}/mcp", server.url))
        .bearer_auth(&ada)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 405);

    // Each tenant sees its own agents only.
    let a_tools = tools(&server, &ada).await;
    assert!(a_tools.contains(&"ask_helper".to_owned()), "{a_tools:?}");
    assert!(!a_tools.iter().any(|t| t == "ask_rival"), "{a_tools:?}");
    let b_tools = tools(&server, &globex).await;
    assert!(b_tools.contains(&"ask_rival".to_owned()), "{b_tools:?}");
    assert!(
        !b_tools
            .iter()
            .any(|t| t == "ask_helper" || t == "ask_vault"),
        "{b_tools:?}"
    );

    // Ada talks to helper; her session is hers.
    let first = call(
        &server,
        &ada,
        "ask_helper",
        json!({"message": "My name is Ada."}),
    )
    .await;
    assert_eq!(first["result"]["isError"], false, "{first}");
    let session = first["result"]["structuredContent"]["session"]
        .as_str()
        .expect("session")
        .to_owned();
    let before = (sessions(&admin).await, model.request_count());

    // Tenant B can neither name A's agent nor reach A's session.
    let (status, answer) = rpc(
        &server,
        Some(&globex),
        "tools/call",
        json!({"name": "ask_helper", "arguments": {"message": "hi"}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown tool `ask_helper`")),
        "{answer}"
    );
    let stolen = json!({"session": session, "message": "What is my name?"});
    let said = refusal(&call(&server, &globex, "continue_session", stolen.clone()).await);
    assert!(said.starts_with("not_found"), "{said}");
    let said = refusal(
        &call(
            &server,
            &globex,
            "ask_rival",
            json!({"session": session, "message": "What is my name?"}),
        )
        .await,
    );
    assert!(said.starts_with("not_found"), "{said}");
    // Nor can Bob, of Ada's own tenant, reach her session or her memories.
    let said = refusal(&call(&server, &bob, "continue_session", stolen).await);
    assert!(said.starts_with("not_found"), "{said}");
    let said = refusal(
        &call(
            &server,
            &bob,
            "memory_search",
            json!({"query": "tea", "namespaces": ["users/ada"]}),
        )
        .await,
    );
    assert!(said.starts_with("user_not_allowed"), "{said}");
    let said = refusal(
        &call(
            &server,
            &bob,
            "ask_helper",
            json!({"message": "hi", "user": "ada"}),
        )
        .await,
    );
    assert!(said.starts_with("user_not_allowed"), "{said}");

    // Bad input: a clear error each, never a panic, nothing stored.
    let bad: &[(&str, Value, &str)] = &[
        (
            "ask_helper",
            json!({}),
            "invalid arguments: missing field `message`",
        ),
        (
            "ask_helper",
            json!({"message": 7}),
            "invalid arguments: invalid type: integer `7`",
        ),
        (
            "ask_helper",
            json!({"message": "   "}),
            "`message` must not be empty",
        ),
        (
            "ask_helper",
            json!({"message": "hi", "extra": 1}),
            "unknown field `extra`",
        ),
        (
            "ask_helper",
            json!({"message": "hi", "session": "ses_nope"}),
            "not_found",
        ),
        (
            "ask_helper",
            json!({"message": "hi", "user": "bad/user"}),
            "invalid_request",
        ),
        (
            "ask_vault",
            json!({"message": "hi", "session": session}),
            "not a session of agent `vault`",
        ),
        (
            "continue_session",
            json!({"session": 5, "message": "hi"}),
            "invalid type: integer `5`",
        ),
        (
            "continue_session",
            json!({"message": "hi"}),
            "missing field `session`",
        ),
        (
            "continue_session",
            json!({"session": "ses_019600000000700080000000000000aa", "message": "hi"}),
            "not_found",
        ),
        (
            "knowledge_search",
            json!({"query": "x", "limit": 0}),
            "`limit` must be between 1 and 100",
        ),
        (
            "knowledge_search",
            json!({"query": "x", "sources": ["nope"]}),
            "no knowledge source `nope`",
        ),
        (
            "memory_search",
            json!({"query": ""}),
            "`query` must not be empty",
        ),
        (
            "memory_search",
            json!({"query": "x", "namespaces": ["../etc"]}),
            "invalid_request",
        ),
    ];
    for (tool, arguments, expected) in bad {
        let said = refusal(&call(&server, &ada, tool, arguments.clone()).await);
        assert!(said.contains(expected), "{tool} {arguments}: {said}");
    }
    let (status, answer) = rpc(
        &server,
        Some(&ada),
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (200, &json!(-32602)),
        "{answer}"
    );
    assert_eq!(
        (sessions(&admin).await, model.request_count()),
        before,
        "bad calls stored nothing and asked no model"
    );

    // Scopes: a key for knowledge only lists and may call that alone.
    let reader = key(
        &admin,
        json!({"name": "reader", "scopes": ["knowledge:read"]}),
    )
    .await;
    assert_eq!(tools(&server, &reader).await, ["knowledge_search"]);
    for tool in ["ask_helper", "continue_session", "memory_search"] {
        let said = refusal(
            &call(
                &server,
                &reader,
                tool,
                json!({"message": "hi", "session": session, "query": "q"}),
            )
            .await,
        );
        assert!(said.starts_with("insufficient_scope"), "{tool}: {said}");
    }

    // Policy: a denied agent is refused with its reason and leaves no
    // session; a run that stops for approval says so and names its run.
    let policy = r#"
permit(principal, action == Roster::Action::"invoke_agent", resource);
forbid(principal, action == Roster::Action::"invoke_agent", resource == Roster::Agent::"vault");
@approval("every nap needs a person")
permit(principal == Roster::Agent::"napper", action == Roster::Action::"call_tool", resource == Roster::Tool::"conversation_search");
"#;
    let (status, body) = admin
        .post(
            "/v1/agents",
            json!({"name": "napper", "instructions": "Nap.", "model": "openai/gpt-4.1-mini", "tools": ["conversation_search"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let put = admin
        .http
        .put(format!("{}/v1/policies/mcp", server.url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"text": policy}))
        .send()
        .await
        .expect("policy");
    assert_eq!(put.status(), 201);
    let before = sessions(&admin).await;
    let said = refusal(&call(&server, &ada, "ask_vault", json!({"message": "open"})).await);
    assert!(said.starts_with("denied_by_policy"), "{said}");
    assert_eq!(
        sessions(&admin).await,
        before,
        "the refused call left no session"
    );
    model.push(Reply::tool_call(
        "nap1",
        "conversation_search",
        r#"{"query": "naps"}"#,
    ));
    let waiting = call(&server, &ada, "ask_napper", json!({"message": "nap"})).await;
    let said = refusal(&waiting);
    let run = waiting["result"]["structuredContent"]["run"]
        .as_str()
        .expect("run");
    assert!(
        said.contains(run) && said.contains("awaits approval"),
        "{said}"
    );
    assert_eq!(
        waiting["result"]["structuredContent"]["status"],
        "awaiting_approval"
    );
}
