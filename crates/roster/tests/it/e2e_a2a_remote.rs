//! End to end, Roster as an A2A *client*: a real remote agent (the a2a-sdk
//! 1.3 server in `tests/clients/a2a_remote_agent.py`, on a loopback port
//! the operator opens with `ROSTER_EGRESS_ALLOW`) is registered with the
//! CLI by its card URL and a bearer token, an agent lists `a2a:echo`, and
//! runs driven by the fake model call it: the answer reaches the model, a
//! later run (after a restart too) continues the same remote context, a
//! 0.3 card is called the 0.3 way, a task waiting for input is an error
//! result, a `call_tool` policy keeps the call from leaving, a crash mid-
//! call does not send it again, the credential is never shown, and cards
//! on walled addresses (or naming walled endpoints) are refused. And one
//! Roster's agent calls an agent of another Roster through its A2A server.
//!
//! The first test needs Python's `a2a-sdk` with its server extras and
//! `uvicorn` (see `.ci/run`); skipped with a notice without them, except in
//! CI.

use crate::common;

use common::{Server, ADMIN_KEY};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "tok-remote-must-stay-secret";

/// The remote agent's process, stopped with the test.
struct RemoteAgent {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for RemoteAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RemoteAgent {
    async fn start(dir: &Path, walled_endpoint: &str) -> RemoteAgent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/a2a_remote_agent.py");
        let log = dir.join("remote.jsonl");
        let child = Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string(), "--token", TOKEN])
            .arg("--log")
            .arg(&log)
            .args(["--walled-endpoint", walled_endpoint])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the remote agent");
        let remote = RemoteAgent {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let card = format!("{}/.well-known/agent-card.json", remote.base);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&card).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the remote agent did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        remote
    }

    /// What the remote logged: its requests and the messages it handled.
    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    fn messages(&self) -> Vec<(String, String)> {
        self.entries()
            .into_iter()
            .filter_map(|e| {
                Some((
                    e["message"].as_str()?.to_owned(),
                    e["context"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }
}

/// The CLI with the admin key and `extra` in its environment.
fn cli(server: &Server, extra: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env("ROSTER_URL", &server.url)
        .env("ROSTER_API_KEY", ADMIN_KEY)
        .envs(extra.iter().copied())
        .output()
        .expect("run cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_cli(server: &Server, args: &[&str]) -> String {
    let (ok, out, err) = cli(server, &[("ECHO_TOKEN", TOKEN)], args);
    assert!(ok, "roster {}: {out}{err}", args.join(" "));
    out
}

/// Posts `content` to the session and returns the finished run's tool
/// result (the one item of that type the run added).
async fn tool_result(api: &common::Api, sid: &str, content: &str) -> Value {
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({ "content": content }),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["run"]["status"], "completed", "{result}");
    result["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["type"] == "tool_result")
        .cloned()
        .unwrap_or_else(|| panic!("no tool result in {result}"))
}

fn call(id: &str, tool: &str, message: &str) -> Reply {
    Reply::tool_call(id, tool, &json!({ "message": message }).to_string())
}

/// A tool result item's text.
fn output(item: &Value) -> String {
    item["output"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_calls_a_remote_a2a_agent_through_the_normal_tool_path() {
    if !common::python_has("a2a.server.routes") || !common::python_has("uvicorn") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // A loopback port the operator does not open: the card that names it
    // as its endpoint must be refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    let walled_endpoint = format!("http://127.0.0.1:{closed_port}/rpc");
    let remote = RemoteAgent::start(dir.path(), &walled_endpoint).await;
    let allow = remote.base.trim_start_matches("http://").to_owned();
    let model = FakeModelServer::start().await;
    let data = dir.path().join("data");
    let walls = [("ROSTER_EGRESS_ALLOW", allow.as_str())];
    let mut server = Server::start(&data, &model.openai_base_url(), &walls).await;
    let api = server.client();

    // --- registration, with the credential sealed and never shown -------
    let out = run_cli(
        &server,
        &[
            "remote",
            "add",
            "echo",
            "--url",
            &format!("{}/", remote.base),
            "--bearer-env",
            "ECHO_TOKEN",
        ],
    );
    assert!(
        out.contains("ask_remote_echo") && out.contains("Echo Agent"),
        "{out}"
    );
    // A 0.3-style card (url, preferredTransport, protocolVersion 0.3.0).
    run_cli(
        &server,
        &[
            "remote",
            "add",
            "old",
            "--url",
            &format!("{}/v03/", remote.base),
            "--bearer-env",
            "ECHO_TOKEN",
        ],
    );
    let out = run_cli(&server, &["remote", "list"]);
    assert!(
        out.contains("echo") && out.contains("Echo Agent") && out.contains("set"),
        "{out}"
    );
    assert!(
        out.contains("(A2A 0.3)") && out.contains("(A2A 1.0)"),
        "{out}"
    );
    let out = run_cli(&server, &["remote", "show", "echo"]);
    assert!(out.contains("Echo: Repeats the message"), "{out}");
    assert!(
        out.contains("Authorization (values stored encrypted)"),
        "{out}"
    );
    let (status, shown) = api.get("/v1/remotes/echo").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["credential_set"], true);
    assert_eq!(shown["headers"], json!(["Authorization"]));
    assert_eq!(shown["card"]["endpoint"], format!("{}/rpc", remote.base));
    assert_eq!(shown["card"]["skills"][0]["name"], "Echo");
    let (_, listed) = api.get("/v1/remotes").await;
    for text in [
        shown.to_string(),
        listed.to_string(),
        run_cli(&server, &["remote", "show", "echo", "--json"]),
        run_cli(&server, &["remote", "list", "--json"]),
    ] {
        assert!(!text.contains(TOKEN), "the credential is shown: {text}");
    }
    let (ok, _, err) = cli(
        &server,
        &[],
        &["remote", "add", "echo", "--url", &remote.base],
    );
    assert!(!ok && err.contains("exists"), "{err}");
    let (ok, _, err) = cli(
        &server,
        &[],
        &[
            "remote",
            "add",
            "x",
            "--url",
            &remote.base,
            "--bearer-env",
            "NO_SUCH_VAR_SET",
        ],
    );
    assert!(!ok && err.contains("not set"), "{err}");

    // --- the walls: a card on a walled address, a card naming one --------
    for (url, says) in [
        (format!("http://127.0.0.1:{closed_port}/"), "loopback"),
        ("http://169.254.169.254/".to_owned(), "link-local"),
        (format!("{}/walled/", remote.base), "endpoint"),
    ] {
        let (status, body) = api
            .post("/v1/remotes", json!({"name": "walled", "url": url}))
            .await;
        assert_eq!(status, 403, "{url}: {body}");
        assert_eq!(body["error"]["code"], "egress_denied", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}"
        );
    }
    let (ok, _, err) = cli(
        &server,
        &[],
        &[
            "remote",
            "add",
            "walled",
            "--url",
            &format!("{}/walled/", remote.base),
        ],
    );
    assert!(!ok && err.contains(&walled_endpoint), "{err}");
    let (status, body) = api.get("/v1/remotes/walled").await;
    assert_eq!(status, 404, "nothing was stored: {body}");
    let (status, body) = api
        .post(
            "/v1/remotes",
            json!({"name": "nocard", "url": format!("{}/nothing.json", remote.base)}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "remote_unavailable", "{body}");

    // --- an agent with the remote as a tool ------------------------------
    let (status, body) = api
        .post(
            "/v1/agents",
            json!({"name": "bad", "instructions": "x", "model": "openai/m", "tools": ["a2a:nope"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("no remote agent `nope`"),
        "{body}"
    );
    let (status, agent) = api
        .post(
            "/v1/agents",
            json!({"name": "coordinator", "instructions": "Delegate.", "model": "openai/m",
                   "tools": ["a2a:echo", "a2a:old"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (_, session) = api
        .post("/v1/sessions", json!({"agent": "coordinator"}))
        .await;
    let sid = session["id"].as_str().expect("session").to_owned();

    model.push(call("c1", "ask_remote_echo", "hello there"));
    model.push(Reply::text("The remote said hello."));
    let first = tool_result(&api, &sid, "Say hello to the echo agent").await;
    let text = output(&first);
    assert!(
        text.contains("echo: hello there (turn 1 of context "),
        "{text}"
    );
    assert_eq!(first["is_error"], false, "{first}");
    let messages = remote.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let context = messages[0].1.clone();
    // The model was offered the tool with the card's words, and read the
    // remote's answer in its next request.
    let requests = model.requests();
    let offered = requests[0].body["tools"].as_array().expect("tools").clone();
    let tool = offered
        .iter()
        .find(|t| t["function"]["name"] == "ask_remote_echo")
        .expect("ask_remote_echo offered");
    let description = tool["function"]["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("Echoes what it is told") && description.contains("Echo: Repeats"),
        "{description}"
    );
    assert!(offered
        .iter()
        .any(|t| t["function"]["name"] == "ask_remote_old"));
    let next = requests[1].body["messages"].to_string();
    assert!(
        next.contains(&format!("echo: hello there (turn 1 of context {context})")),
        "{next}"
    );
    // Every call carried the credential and spoke 1.0.
    let request_lines: Vec<Value> = remote
        .entries()
        .into_iter()
        .filter(|e| e.get("request").is_some())
        .collect();
    assert!(!request_lines.is_empty());
    for line in &request_lines {
        assert_eq!(line["authorized"], true, "{line}");
        assert_eq!(line["version"], "1.0", "{line}");
    }

    // --- the same session continues the remote conversation --------------
    model.push(call("c2", "ask_remote_echo", "again"));
    model.push(Reply::text("ok"));
    let second = tool_result(&api, &sid, "Once more").await;
    assert!(
        output(&second).contains(&format!("echo: again (turn 2 of context {context})")),
        "{second}"
    );
    // Another session has its own.
    let (_, other) = api
        .post("/v1/sessions", json!({"agent": "coordinator"}))
        .await;
    let other = other["id"].as_str().expect("session").to_owned();
    model.push(call("c3", "ask_remote_echo", "elsewhere"));
    model.push(Reply::text("ok"));
    let separate = tool_result(&api, &other, "Hi").await;
    assert!(
        output(&separate).contains("echo: elsewhere (turn 1 of context "),
        "{separate}"
    );
    assert!(!output(&separate).contains(&context), "{separate}");

    // --- …after a restart too: the context is stored --------------------
    server.kill();
    let mut server = Server::start(&data, &model.openai_base_url(), &walls).await;
    let api = server.client();
    model.push(call("c4", "ask_remote_echo", "still there?"));
    model.push(Reply::text("ok"));
    let third = tool_result(&api, &sid, "After the restart").await;
    assert!(
        output(&third).contains(&format!("echo: still there? (turn 3 of context {context})")),
        "{third}"
    );

    // --- the 0.3 card is called the 0.3 way -------------------------------
    let before = remote.entries().len();
    model.push(call("c5", "ask_remote_old", "legacy hi"));
    model.push(Reply::text("ok"));
    let legacy = tool_result(&api, &sid, "Ask the old one").await;
    assert!(
        output(&legacy).contains("echo: legacy hi (turn 1 of context "),
        "{legacy}"
    );
    let versions: Vec<Value> = remote.entries()[before..]
        .iter()
        .filter(|e| e.get("request").is_some())
        .map(|e| e["version"].clone())
        .collect();
    assert_eq!(versions, [json!("0.3")]);

    // --- a task waiting for input is an error result that says so --------
    model.push(call("c6", "ask_remote_echo", "I need input from you"));
    model.push(Reply::text("It asks which city."));
    let waiting = tool_result(&api, &sid, "Plan a trip").await;
    assert_eq!(waiting["is_error"], true, "{waiting}");
    assert!(
        output(&waiting).contains("needs more input") && output(&waiting).contains("Which city?"),
        "{waiting}"
    );
    let failed = {
        model.push(call("c7", "ask_remote_echo", "please fail"));
        model.push(Reply::text("It failed."));
        tool_result(&api, &sid, "Try the failing thing").await
    };
    assert_eq!(failed["is_error"], true, "{failed}");
    assert!(
        output(&failed).contains("failed the task")
            && output(&failed).contains("the remote failed on purpose"),
        "{failed}"
    );

    // --- a crash mid-call does not send the call again --------------------
    let handled = remote.messages().len();
    model.push(call("c8", "ask_remote_echo", "please sleep"));
    model.push(Reply::text("Whatever happened, I reported it."));
    let (status, started) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Slow one", "background": true}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let run = started["run"]["id"].as_str().expect("run").to_owned();
    common::until(
        "the remote to get the slow message",
        Duration::from_secs(20),
        async || {
            remote
                .messages()
                .iter()
                .any(|(m, _)| m == "please sleep")
                .then_some(())
        },
    )
    .await;
    server.kill();
    let server = Server::start(&data, &model.openai_base_url(), &walls).await;
    let api = server.client();
    let finished = common::until(
        "the interrupted run to finish",
        Duration::from_secs(30),
        async || {
            let (_, run) = api.get(&format!("/v1/runs/{run}")).await;
            (run["status"] == "completed" || run["status"] == "failed").then_some(run)
        },
    )
    .await;
    assert_eq!(finished["status"], "completed", "{finished}");
    // Give a (wrong) second send time to arrive before counting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let slept: Vec<(String, String)> = remote.messages()[handled..].to_vec();
    assert_eq!(slept.len(), 1, "the call was sent once: {slept:?}");
    let (_, items) = api.get(&format!("/v1/sessions/{sid}/items")).await;
    let interrupted = items["data"]
        .as_array()
        .expect("items")
        .iter()
        .rev()
        .find(|i| i["type"] == "tool_result")
        .cloned()
        .expect("a tool result");
    assert!(
        output(&interrupted).contains("not idempotent"),
        "{interrupted}"
    );

    // --- a call_tool policy keeps the call from leaving -------------------
    let policy = dir.path().join("no-echo.cedar");
    std::fs::write(
        &policy,
        r#"
permit(principal, action == Roster::Action::"invoke_agent", resource);
forbid(principal, action == Roster::Action::"call_tool", resource)
  when { resource.kind == "a2a" && resource.server == "echo" };
permit(principal, action == Roster::Action::"call_tool", resource);
"#,
    )
    .expect("policy");
    let (ok, out, err) = cli(
        &server,
        &[],
        &[
            "policy",
            "put",
            "no-echo",
            "--file",
            policy.to_str().expect("path"),
        ],
    );
    assert!(ok, "{out}{err}");
    let handled = remote.messages().len();
    model.push(call("c9", "ask_remote_echo", "forbidden words"));
    model.push(Reply::text("I may not."));
    let denied = tool_result(&api, &sid, "Try anyway").await;
    assert_eq!(denied["is_error"], true, "{denied}");
    assert!(output(&denied).contains("denied by policy"), "{denied}");
    assert_eq!(
        remote.messages().len(),
        handled,
        "nothing reached the remote"
    );
    // The other remote is still allowed.
    model.push(call("c10", "ask_remote_old", "allowed words"));
    model.push(Reply::text("ok"));
    let allowed = tool_result(&api, &sid, "The old one then").await;
    assert!(
        output(&allowed).contains("echo: allowed words"),
        "{allowed}"
    );

    // --- the record --------------------------------------------------------
    let (_, audit) = api.get("/v1/audit?limit=500").await;
    let events = audit["data"].as_array().expect("audit").clone();
    let has = |action: &str, resource: &str, decision: Option<&str>| {
        events.iter().find(|e| {
            e["action"] == action
                && e["resource"] == resource
                && decision.is_none_or(|d| e["decision"] == d)
        })
    };
    assert!(has("a2a.add", "a2a:echo", None).is_some(), "{audit}");
    assert!(
        has("a2a.add", "a2a:walled", Some("deny")).is_some(),
        "refusals are on the record: {audit}"
    );
    let decided =
        has("policy.call_tool", "tool:ask_remote_echo", Some("deny")).expect("the denial");
    let chain = decided["actor"].as_str().unwrap_or_default();
    assert!(
        chain.contains("agent:coordinator") && chain.contains("tool:ask_remote_echo"),
        "{chain}"
    );

    // --- refresh and removal ------------------------------------------------
    let out = run_cli(&server, &["remote", "refresh", "echo"]);
    assert!(out.contains("refreshed remote agent echo"), "{out}");
    run_cli(&server, &["remote", "remove", "old"]);
    let out = run_cli(&server, &["remote", "list"]);
    assert!(
        out.contains("echo") && !out.contains("Echo Agent (0.3)"),
        "{out}"
    );

    // The token is not in the database file in clear.
    let needle = TOKEN.as_bytes();
    for file in ["roster.db", "roster.db-wal"] {
        let Ok(bytes) = std::fs::read(data.join(file)) else {
            continue;
        };
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{file}");
    }
    drop(server);
}

/// "Including another Roster": one Roster's agent calls an agent of a
/// second Roster through that one's A2A server (its card behind the key,
/// which the registration carries sealed), and the second call in the
/// session goes on in the same remote session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_agent_calls_an_agent_of_another_roster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let far_model = FakeModelServer::start().await;
    let far = Server::start(&dir.path().join("far"), &far_model.openai_base_url(), &[]).await;
    let (status, body) = far
        .client()
        .post(
            "/v1/agents",
            json!({"name": "helper", "instructions": "Answers arithmetic.", "model": "openai/m"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let near_model = FakeModelServer::start().await;
    let allow = far.url.trim_start_matches("http://").to_owned();
    let near = Server::start(
        &dir.path().join("near"),
        &near_model.openai_base_url(),
        &[("ROSTER_EGRESS_ALLOW", allow.as_str())],
    )
    .await;
    // The far Roster's key is the credential (its A2A endpoints need one).
    let (ok, out, err) = cli(
        &near,
        &[("FAR_KEY", ADMIN_KEY)],
        &[
            "remote",
            "add",
            "peer",
            "--url",
            &format!("{}/v1/a2a/helper", far.url),
            "--bearer-env",
            "FAR_KEY",
        ],
    );
    assert!(ok, "{out}{err}");
    let api = near.client();
    let (status, body) = api
        .post(
            "/v1/agents",
            json!({"name": "coordinator", "instructions": "Delegate.", "model": "openai/m",
                   "tools": ["a2a:peer"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, session) = api
        .post("/v1/sessions", json!({"agent": "coordinator"}))
        .await;
    let sid = session["id"].as_str().expect("session").to_owned();

    near_model.push(call("c1", "ask_remote_peer", "What is 2+2?"));
    near_model.push(Reply::text("The peer says 4."));
    far_model.push(Reply::text("4, said the far helper"));
    let first = tool_result(&api, &sid, "Ask the peer").await;
    assert_eq!(output(&first), "4, said the far helper", "{first}");
    let next = near_model.requests()[1].body["messages"].to_string();
    assert!(next.contains("4, said the far helper"), "{next}");

    near_model.push(call("c2", "ask_remote_peer", "And times 3?"));
    near_model.push(Reply::text("12."));
    far_model.push(Reply::text("12, said the far helper"));
    let second = tool_result(&api, &sid, "Ask again").await;
    assert_eq!(output(&second), "12, said the far helper", "{second}");
    // The far helper saw the first exchange: the same session went on.
    let far_seen = far_model.requests()[1].body["messages"].to_string();
    assert!(
        far_seen.contains("What is 2+2?") && far_seen.contains("4, said the far helper"),
        "{far_seen}"
    );
    let (_, sessions) = far.client().get("/v1/sessions").await;
    assert_eq!(
        sessions["data"].as_array().map(Vec::len),
        Some(1),
        "{sessions}"
    );
}
