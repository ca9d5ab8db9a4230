//! End to end: the real binary attaches the filesystem MCP server from npm
//! through the CLI (the admin key, the server confined to what it is
//! shown), an agent calls its tool through the fake model server, the
//! server's whole process tree dies with Roster (SIGKILL), and it comes
//! back at the next run.
//!
//! Needs `ROSTER_TEST_MCP_NODE_MODULES` (see `.ci/run`); skipped with a
//! notice without it, except in CI.

use crate::common;

use common::{cli, Server};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;

use roster_testkit::escape::{none_left, processes_with};
use roster_testkit::peers::mcp_node_modules as node_modules;

#[tokio::test]
async fn an_agent_reads_a_file_through_the_filesystem_mcp_server() {
    let Some(modules) = node_modules() else {
        return;
    };
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).expect("docs");
    let report = docs.join("q3.txt");
    std::fs::write(&report, "Q3 revenue: 4.2M EUR\n").expect("file");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &model.openai_base_url(), &[]).await;
    let api = server.client();

    let fs_bin = modules.join(".bin/mcp-server-filesystem");
    let (ok, out, err) = cli(
        &server,
        &[
            "mcp",
            "add",
            "files",
            "--env",
            "FILES_TOKEN=tok-must-stay-secret",
            "--allow",
            "read_text_file,list_directory",
            "--read-only",
            modules.to_str().expect("path"),
            "--read-only",
            docs.to_str().expect("path"),
            "--",
            fs_bin.to_str().expect("path"),
            docs.to_str().expect("path"),
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("added MCP server files"), "{out}");
    let (ok, out, err) = cli(&server, &["mcp", "tools", "files"]);
    assert!(ok, "{err}");
    assert!(out.contains("files__read_text_file"), "{out}");
    assert!(out.contains("files__write_file"), "{out}");
    let (ok, out, _) = cli(&server, &["mcp", "list"]);
    assert!(
        ok && out.contains("files") && out.contains("stdio"),
        "{out}"
    );
    // The registration shows the secret's name, never its value.
    let (status, shown) = api.get("/v1/mcp/servers/files").await;
    assert_eq!(status, 200);
    assert_eq!(shown["env"], json!(["FILES_TOKEN"]));
    assert!(!shown.to_string().contains("tok-must-stay-secret"));
    let (ok, _, err) = cli(&server, &["mcp", "add", "files", "--", "sh"]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // A command that does not exist is refused before anything is stored.
    let (ok, _, err) = cli(&server, &["mcp", "add", "ghost", "--", "/no/such/server"]);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // Bad registrations are refused with a stable code and change nothing.
    for (body, code) in [
        (
            json!({"name": "Bad Name", "command": "x"}),
            "invalid_request",
        ),
        (json!({"name": "x"}), "invalid_request"),
        (
            json!({"name": "x", "command": "c", "url": "http://h/mcp"}),
            "invalid_request",
        ),
        (
            json!({"name": "x", "command": "c", "surprise": true}),
            "invalid_request",
        ),
        (json!({"name": "x", "url": "ftp://h"}), "invalid_request"),
    ] {
        let (status, answer) = api.post("/v1/mcp/servers", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    let (status, answer) = api.get("/v1/mcp/servers/nope/tools").await;
    assert_eq!(status, 404, "{answer}");
    let (_, listed) = api.get("/v1/mcp/servers").await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");

    // Agents name the server, or one allowed tool; nothing else.
    for (tools, why) in [
        (json!(["mcp:nope"]), "no MCP server"),
        (json!(["mcp:files/write_file"]), "allow-list"),
        (json!(["mcp:Bad"]), "invalid name `Bad`"),
        (json!(["ftp:files"]), "unknown tool"),
    ] {
        let (status, body) = api
            .post(
                "/v1/agents",
                json!({"name": "bad", "instructions": "x", "model": "openai/m", "tools": tools}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(why), "{why}: {body}");
    }
    let (status, agent) = api
        .post(
            "/v1/agents",
            json!({
                "name": "analyst",
                "instructions": "Answer from the files.",
                "model": "openai/gpt-4.1-mini",
                "tools": ["mcp:files"],
            }),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "analyst"})).await;
    let sid = session["id"].as_str().expect("session").to_owned();

    let args = json!({"path": report.display().to_string()}).to_string();
    model.push(Reply::tool_call("c1", "files__read_text_file", &args));
    model.push(Reply::text("Q3 revenue was 4.2M EUR (docs/q3.txt)."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "What was Q3 revenue?"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["run"]["status"], "completed", "{result}");
    let tool_result = result["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["type"] == "tool_result")
        .expect("tool result")
        .clone();
    assert!(
        tool_result.to_string().contains("4.2M EUR"),
        "{tool_result}"
    );
    // The model was offered exactly the allowed tools, under their MCP names.
    let first = &model.requests()[0].body;
    let mut offered: Vec<String> = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect();
    offered.sort();
    assert_eq!(offered, ["files__list_directory", "files__read_text_file"]);

    // A crash of Roster itself takes the server's whole sandbox with it
    // (its command line names the docs directory)…
    let marker = docs.display().to_string();
    assert!(!processes_with(&marker).is_empty(), "the server runs");
    server.kill();
    none_left(&marker, None, std::time::Duration::from_secs(10)).await;
    // …and the next run starts it again.
    let server = Server::start(&data, &model.openai_base_url(), &[]).await;
    let api = server.client();
    let listing = json!({"path": docs.display().to_string()}).to_string();
    model.push(Reply::tool_call("c2", "files__list_directory", &listing));
    model.push(Reply::text("There is q3.txt."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Which files are there?"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert!(result.to_string().contains("q3.txt"), "{result}");

    // The credential is stored sealed: not in the database file in clear.
    let needle = b"tok-must-stay-secret";
    for file in ["roster.db", "roster.db-wal"] {
        let Ok(bytes) = std::fs::read(data.join(file)) else {
            continue;
        };
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{file}");
    }

    let (ok, _, err) = cli(&server, &["mcp", "remove", "files"]);
    assert!(ok, "{err}");
    let (status, _) = api.get("/v1/mcp/servers/files").await;
    assert_eq!(status, 404);
}

/// `--timeout` bounds a server's start: one that never answers fails within
/// it, with one line saying so.
#[tokio::test]
async fn a_server_that_never_starts_fails_within_its_timeout() {
    if !roster_testkit::peers::have_bwrap() {
        return;
    }
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"), &model.openai_base_url(), &[]).await;
    let (ok, out, err) = cli(
        &server,
        &["mcp", "add", "mute", "--timeout", "2", "--", "sleep", "600"],
    );
    assert!(ok, "{out}{err}");
    let started = std::time::Instant::now();
    let (ok, _, err) = cli(&server, &["mcp", "tools", "mute"]);
    let took = started.elapsed();
    assert!(!ok);
    assert!(err.contains("did not finish starting within 2s"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        took < std::time::Duration::from_secs(8),
        "took {took:?}, not the 2 s asked"
    );
}
