//! What a user does from the command line to agents and sessions over
//! their life, and the rough edges of the CLI itself, against the real
//! binary: agent versions, rollback and list edits that print what changed;
//! session upgrade and delete; a warning for an unconfigured provider; the
//! key found from the data directory wherever the CLI runs; no panic when
//! the reader of its output goes away.

use crate::common;

use common::{cli, Server};
use roster_testkit::{FakeModelServer, Reply};
use std::process::{Command, Stdio};

fn ok(server: &Server, args: &[&str]) -> (String, String) {
    let (ok, out, err) = cli(server, args);
    assert!(ok, "roster {args:?} failed:\n{out}\n{err}");
    (out, err)
}

fn failed(server: &Server, args: &[&str]) -> String {
    let (ok, out, err) = cli(server, args);
    assert!(!ok, "roster {args:?} should fail:\n{out}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[tokio::test]
async fn agent_versions_rollback_list_edits_and_session_lifecycle() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;

    let (_, err) = ok(
        &server,
        &[
            "agent",
            "create",
            "helper",
            "--model",
            "openai/model-one",
            "--tool",
            "memory_append",
        ],
    );
    assert!(
        err.is_empty(),
        "no warning for a configured provider: {err}"
    );
    let (out, err) = ok(
        &server,
        &["agent", "create", "ghostly", "--model", "ghost/model"],
    );
    assert!(out.contains("created agent ghostly"), "{out}");
    assert!(
        err.starts_with("warning: model provider `ghost` is not configured")
            && err.contains("[providers.ghost]"),
        "{err}"
    );

    let (out, _) = ok(
        &server,
        &[
            "agent",
            "update",
            "helper",
            "--add-tool",
            "memory_replace",
            "--model",
            "openai/model-two",
        ],
    );
    assert!(out.contains("to version 2"), "{out}");
    assert!(out.contains("  tools: +memory_replace"), "{out}");
    assert!(
        out.contains("  model: \"openai/model-one\" -> \"openai/model-two\""),
        "{out}"
    );
    let (out, _) = ok(
        &server,
        &[
            "agent",
            "update",
            "helper",
            "--remove-tool",
            "memory_append",
        ],
    );
    assert!(out.contains("  tools: -memory_append"), "{out}");
    let (out, _) = ok(
        &server,
        &["agent", "update", "helper", "--add-tool", "memory_replace"],
    );
    assert!(out.contains("unchanged at version 3"), "{out}");
    let err = failed(
        &server,
        &["agent", "update", "helper", "--remove-tool", "nothing_here"],
    );
    assert!(err.contains("no `nothing_here` to remove"), "{err}");

    let (out, _) = ok(&server, &["agent", "versions", "helper"]);
    let versions: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(versions, vec!["3*", "2", "1"], "{out}");
    let (out, _) = ok(&server, &["agent", "rollback", "helper", "1"]);
    assert!(out.contains("to version 4 (version 1 restored)"), "{out}");
    assert!(
        out.contains("tools: +memory_append -memory_replace"),
        "{out}"
    );
    failed(&server, &["agent", "rollback", "helper", "77"]);

    // A session on version 4 keeps it until upgraded.
    let api = server.client();
    let (_, session) = api
        .post("/v1/sessions", serde_json::json!({"agent": "helper"}))
        .await;
    let sid = session["id"].as_str().expect("session").to_owned();
    ok(
        &server,
        &["agent", "update", "helper", "--model", "openai/model-five"],
    );
    model.push(Reply::text("old model"));
    let (status, _) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            serde_json::json!({"content": "hello"}),
        )
        .await;
    assert_eq!(status, 200);
    let (out, _) = ok(&server, &["session", "upgrade", &sid]);
    assert!(out.contains("from agent version 4 to 5"), "{out}");
    let (out, _) = ok(&server, &["session", "upgrade", &sid]);
    assert!(
        out.contains("already on its agent's current version"),
        "{out}"
    );
    model.push(Reply::text("new model"));
    let (status, _) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            serde_json::json!({"content": "again"}),
        )
        .await;
    assert_eq!(status, 200);
    let models: Vec<String> = model
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(models, vec!["model-one", "model-five"]);

    let (out, _) = ok(&server, &["session", "delete", &sid]);
    assert!(out.contains(&format!("deleted session {sid}")), "{out}");
    let err = failed(&server, &["session", "show", &sid]);
    assert!(
        err.contains("not found") || err.contains("not_found"),
        "{err}"
    );
    let (out, _) = ok(&server, &["audit", "list", "--action", "session"]);
    assert!(
        out.contains("session.delete") && out.contains("session.upgrade"),
        "{out}"
    );
}

#[tokio::test]
async fn the_key_is_found_from_the_data_dir_and_a_closed_pipe_is_not_a_panic() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    // No ROSTER_ADMIN_KEY: the server writes <data-dir>/admin.key.
    let server =
        Server::start_with_admin_key(dir.path(), &model.openai_base_url(), &[], None).await;
    let elsewhere = tempfile::tempdir().expect("another working directory");
    let bare = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
        command
            .args(args)
            .current_dir(elsewhere.path())
            .env("ROSTER_URL", &server.url)
            .env_remove("ROSTER_API_KEY")
            .env_remove("ROSTER_DATA_DIR")
            .env_remove("ROSTER_CONFIG");
        command
    };
    let data_dir = dir.path().to_str().expect("utf-8 path");

    let out = bare(&["agent", "list", "--data-dir", data_dir])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bare(&["agent", "list"])
        .env("ROSTER_DATA_DIR", data_dir)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A config file naming the data directory is enough too.
    let config = elsewhere.path().join("roster.toml");
    std::fs::write(&config, format!("data_dir = {data_dir:?}\n")).expect("config");
    let out = bare(&["agent", "list"])
        .env("ROSTER_CONFIG", &config)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... and its `listen` is where the server is, when ROSTER_URL is unset.
    let listen = server.url.trim_start_matches("http://");
    std::fs::write(
        &config,
        format!("data_dir = {data_dir:?}\nlisten = {listen:?}\n"),
    )
    .expect("config");
    let out = bare(&["agent", "list"])
        .env_remove("ROSTER_URL")
        .env("ROSTER_CONFIG", &config)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without any of them the error names every place it looked.
    let out = bare(&["agent", "list"]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--data-dir") && err.contains("ROSTER_DATA_DIR"),
        "{err}"
    );

    let long = "x".repeat(2000);
    for n in 0..30 {
        let name = format!("agent-{n:02}");
        let out = bare(&[
            "agent",
            "create",
            &name,
            "--model",
            "openai/m",
            "--instructions",
            &long,
        ])
        .env("ROSTER_DATA_DIR", data_dir)
        .output()
        .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A streamed export into a reader that stops early ends quietly too.
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} audit export | head -c 1 >/dev/null",
            env!("CARGO_BIN_EXE_roster")
        ))
        .current_dir(elsewhere.path())
        .env("ROSTER_URL", &server.url)
        .env("ROSTER_DATA_DIR", data_dir)
        .env_remove("ROSTER_API_KEY")
        .output()
        .expect("sh");
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(err.is_empty(), "{err}");
    // The reader goes away before the first byte: the next print fails.
    for args in [&["agent", "list", "--json"][..], &["agent", "list"][..]] {
        let mut child = bare(args)
            .env("ROSTER_DATA_DIR", data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
}

#[test]
fn a_refused_config_leaves_the_data_directory_untouched_and_says_why_in_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    for (name, text, why) in [
        (
            "catalogue.toml",
            "[mcp.catalogue.files]\ndescription = \"x\"\ncommand = \"sh\"\nargs = [\"{a}\"]\n",
            "mcp.catalogue",
        ),
        (
            "syntax.toml",
            "listen = \n[providers.x\n",
            "invalid config file",
        ),
        (
            "prices.toml",
            "[prices.nomodel]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n",
            "prices",
        ),
    ] {
        let config = dir.path().join(name);
        std::fs::write(&config, text).expect("config");
        let out = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("ROSTER_ADMIN_KEY")
            .env("ROSTER_LOG", "error")
            .output()
            .expect("serve");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(errors.len(), 1, "{name}: one line, got:\n{err}");
        assert!(
            errors[0].starts_with("error: ") && errors[0].contains(why),
            "{name}: {err}"
        );
        assert!(out.stdout.is_empty(), "{name}: no admin key printed");
        assert!(!data.exists(), "{name}: the data directory was created");
    }
}
