//! The CLI against the real server: the `roster` binary runs as a subprocess
//! with `ROSTER_URL` / `ROSTER_API_KEY`, a fake model server answers.

use crate::common;

use common::{Server, ADMIN_KEY};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

const MODEL: &str = "openai/gpt-4.1-mini";

/// How the CLI subprocess reaches its server.
struct Cli {
    url: String,
    key: Option<String>,
    /// `ROSTER_DATA_DIR`: never the working directory's `roster-data`.
    data_dir: PathBuf,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// A failure: non-zero exit and exactly one stderr line `error: …`.
    fn failed(self) -> Out {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected failure; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one stderr line, got:\n{}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl Cli {
    fn new(server: &Server) -> Cli {
        Cli {
            url: server.url.clone(),
            key: Some(ADMIN_KEY.to_owned()),
            data_dir: server.data_dir.join("nonexistent-client-dir"),
        }
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, "").await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"));
        command
            .args(args)
            .env("ROSTER_URL", &self.url)
            .env("ROSTER_DATA_DIR", &self.data_dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match &self.key {
            Some(key) => command.env("ROSTER_API_KEY", key),
            None => command.env_remove("ROSTER_API_KEY"),
        };
        let mut child = command.spawn().expect("spawn roster");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.as_bytes())
            .await
            .expect("write stdin");
        drop(input);
        let output =
            tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
                .await
                .unwrap_or_else(|_| panic!("roster {args:?} did not finish"))
                .expect("wait");
        Out {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The id printed as `session ses_…` on chat's stderr.
fn session_id(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .find(|w| w.starts_with("ses_"))
        .unwrap_or_else(|| panic!("no session id in:\n{stderr}"))
        .to_owned()
}

async fn create_helper(cli: &Cli) {
    cli.run(&[
        "agent",
        "create",
        "helper",
        "--model",
        MODEL,
        "--instructions",
        "You are helpful.",
        "--tool",
        "memory_append",
        "--block",
        "human=Name: unknown",
        "--block-limit",
        "human=200",
    ])
    .await
    .ok();
}

#[tokio::test]
async fn agents_chat_sessions_and_runs() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let cli = Cli::new(&server);

    // agent create / list / show / update
    let out = cli
        .run(&[
            "agent",
            "create",
            "helper",
            "--model",
            MODEL,
            "--instructions",
            "You are helpful.",
            "--tool",
            "memory_append",
            "--block",
            "human=Name: unknown",
            "--block-limit",
            "human=200",
            "--block-limit",
            "scratch=50",
        ])
        .await
        .ok();
    assert!(
        out.stdout.starts_with("created agent helper (agt_"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("version 1"), "{}", out.stdout);

    let out = cli.run(&["agent", "list"]).await.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].starts_with("NAME"), "{}", out.stdout);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "helper");
    assert!(row[1].starts_with("agt_"));
    assert_eq!(row[2..], ["1", MODEL]);

    let agent = cli
        .run(&["agent", "show", "helper", "--memory"])
        .await
        .ok()
        .json();
    assert_eq!(agent["name"], "helper");
    assert_eq!(agent["config"]["tools"][0], "memory_append");
    let blocks = agent["memory_blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len(), 2, "{agent}");
    assert_eq!(blocks[0]["label"], "human");
    assert_eq!(blocks[0]["value"], "Name: unknown");
    // By id as well as by name.
    let id = agent["id"].as_str().expect("id");
    let by_id = cli.run(&["agent", "show", id]).await.ok().json();
    assert_eq!(by_id["name"], "helper");
    assert!(by_id.get("memory_blocks").is_none());

    let out = cli
        .run(&[
            "agent",
            "update",
            "helper",
            "--max-steps",
            "8",
            "--fallback",
            "openai/gpt-4.1",
        ])
        .await
        .ok();
    assert!(out.stdout.contains("to version 2"), "{}", out.stdout);
    let agent = cli.run(&["agent", "show", "helper"]).await.ok().json();
    assert_eq!(agent["version"], 2);
    assert_eq!(agent["config"]["max_steps"], 8);
    assert_eq!(agent["config"]["fallbacks"][0], "openai/gpt-4.1");
    assert_eq!(agent["config"]["tools"][0], "memory_append", "kept");
    let out = cli.run(&["agent", "update", "helper"]).await.failed();
    assert!(out.stderr.contains("nothing to update"), "{}", out.stderr);
    let out = cli
        .run(&["agent", "update", "helper", "--no-fallbacks"])
        .await
        .ok();
    assert!(out.stdout.contains("to version 3"), "{}", out.stdout);

    // chat: two lines from a pipe, the first with a tool call.
    model.push(Reply::tool_call(
        "c1",
        "memory_append",
        r#"{"label":"human","content":"Name: Ada"}"#,
    ));
    model.push(Reply::text("Nice to meet you, Ada."));
    model.push(Reply::text("You are Ada."));
    let out = cli
        .run_with_stdin(&["chat", "helper"], "I am Ada.\n\n   \nWho am I?\n")
        .await
        .ok();
    assert_eq!(
        out.stdout, "Nice to meet you, Ada.\nYou are Ada.\n",
        "stderr:\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(r#"  → tool memory_append {"label":"human","content":"Name: Ada"}"#),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("  ← result: "), "{}", out.stderr);
    assert_eq!(model.request_count(), 3, "blank lines are not sent");
    assert_eq!(model.requests()[0].body["stream"], true);
    let sid = session_id(&out.stderr);
    let agent = cli
        .run(&["agent", "show", "helper", "--memory"])
        .await
        .ok()
        .json();
    assert!(
        agent["memory_blocks"][0]["value"]
            .as_str()
            .expect("value")
            .contains("Name: Ada"),
        "{agent}"
    );

    // Continue the same session; `/exit` ends the loop before later lines.
    model.push(Reply::text("Still Ada."));
    let out = cli
        .run_with_stdin(
            &["chat", "helper", "--session", &sid],
            "Again?\n/exit\nnot sent\n",
        )
        .await
        .ok();
    assert_eq!(out.stdout, "Still Ada.\n");
    assert_eq!(session_id(&out.stderr), sid);
    assert_eq!(model.request_count(), 4);

    // session list / show / items
    let out = cli.run(&["session", "list"]).await.ok();
    assert!(out.stdout.contains(&sid), "{}", out.stdout);
    assert!(out.stdout.contains("helper"), "{}", out.stdout);
    let list = cli
        .run(&[
            "session", "list", "--agent", "helper", "--limit", "5", "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(list["data"].as_array().expect("data").len(), 1);
    let out = cli.run(&["session", "show", &sid]).await.ok();
    assert!(
        out.stdout.contains("agent    helper (agt_"),
        "{}",
        out.stdout
    );

    let out = cli.run(&["session", "items", &sid]).await.ok();
    for expected in [
        "#1 user: I am Ada.",
        "#2 assistant:",
        r#"    → tool memory_append {"label":"human","content":"Name: Ada"}"#,
        "#3 tool memory_append result: ",
        "#4 assistant: Nice to meet you, Ada.",
        "#5 user: Who am I?",
        "#6 assistant: You are Ada.",
        "#7 user: Again?",
        "#8 assistant: Still Ada.",
        "── run run_",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?} in:\n{}",
            out.stdout
        );
    }
    let out = cli
        .run(&["session", "items", &sid, "--limit", "3"])
        .await
        .ok();
    assert!(out.stdout.contains("#3 tool"), "{}", out.stdout);
    assert!(!out.stdout.contains("#4 "), "{}", out.stdout);
    assert!(out.stderr.contains("--after 3"), "{}", out.stderr);
    let out = cli
        .run(&[
            "session", "items", &sid, "--after", "3", "--limit", "2", "--all",
        ])
        .await
        .ok();
    assert!(!out.stdout.contains("#3 "), "{}", out.stdout);
    assert!(out.stdout.contains("#4 assistant"), "{}", out.stdout);
    assert!(out.stdout.contains("#8 assistant"), "{}", out.stdout);
    let items = cli
        .run(&["session", "items", &sid, "--json", "--all", "--limit", "3"])
        .await
        .ok()
        .json();
    let items = items["data"].as_array().expect("data");
    assert_eq!(items.len(), 8);

    // run show
    let run_id = items[0]["run_id"].as_str().expect("run id");
    let out = cli.run(&["run", "show", run_id]).await.ok();
    for expected in [
        "status    completed",
        "input     I am Ada.",
        "output    Nice to meet you, Ada.",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?} in:\n{}",
            out.stdout
        );
    }
    let steps: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("N "))
        .skip(1)
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        steps,
        vec![
            vec!["1", "model_call", "completed", MODEL],
            vec!["2", "tool_call", "completed", "memory_append"],
            vec!["3", "model_call", "completed", MODEL],
        ],
        "{}",
        out.stdout
    );
    let detail = cli
        .run(&["run", "show", run_id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["steps"].as_array().expect("steps").len(), 3);
    let out = cli.run(&["run", "cancel", run_id]).await.failed();
    assert!(out.stderr.contains("run_finished"), "{}", out.stderr);

    // agent delete
    let out = cli.run(&["agent", "delete", "helper"]).await.ok();
    assert!(
        out.stdout.starts_with("deleted agent helper"),
        "{}",
        out.stdout
    );
    let out = cli.run(&["agent", "list"]).await.ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no agents"), "{}", out.stderr);
}

#[tokio::test]
async fn chat_reports_a_failed_run_and_goes_on() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let cli = Cli::new(&server);
    create_helper(&cli).await;

    model.push(Reply::error(400, "the fake model refuses"));
    model.push(Reply::text("Second time lucky."));
    let out = cli
        .run_with_stdin(&["chat", "helper"], "first\nsecond\n")
        .await;
    assert_eq!(out.code, Some(1), "a pipe learns that a message failed");
    assert_eq!(out.stdout, "Second time lucky.\n", "{}", out.stderr);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{}", out.stderr);
    assert!(
        errors[0].starts_with("error: provider_bad_request: ") && errors[0].contains("(run run_"),
        "{}",
        out.stderr
    );
    assert_eq!(errors[1], "error: 1 of 2 messages failed");
}

#[tokio::test]
async fn chat_prints_text_that_arrives_only_in_the_final_item() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("roster.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.plain]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-test\"\nstream = false\n",
            model.openai_base_url()
        ),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8 path").to_owned();
    let server = Server::start(
        &dir.path().join("data"),
        &model.openai_base_url(),
        &[("ROSTER_CONFIG", &config)],
    )
    .await;
    let cli = Cli::new(&server);
    cli.run(&["agent", "create", "plain", "--model", "plain/some-model"])
        .await
        .ok();
    model.push(Reply::text("No deltas here."));
    let out = cli.run_with_stdin(&["chat", "plain"], "hi\n").await.ok();
    assert_eq!(out.stdout, "No deltas here.\n", "{}", out.stderr);
    assert_ne!(
        model.requests()[0].body.get("stream"),
        Some(&Value::Bool(true)),
        "the provider was asked not to stream"
    );
}

#[tokio::test]
async fn errors_are_one_line() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let cli = Cli::new(&server);

    // Unknown agent: the server's code, on one line.
    for args in [
        &["agent", "show", "nobody"][..],
        &["agent", "delete", "nobody"],
        &["agent", "update", "nobody", "--max-steps", "3"],
        &["chat", "nobody"],
        &["session", "list", "--agent", "nobody"],
        &["session", "items", "ses_nope"],
        &["run", "show", "run_nope"],
    ] {
        let out = cli.run(args).await.failed();
        assert!(out.stderr.contains("not_found"), "{args:?}: {}", out.stderr);
    }

    // The server's validation errors come through as they are.
    let out = cli
        .run(&["agent", "create", "bad", "--model", "no-slash"])
        .await
        .failed();
    assert!(out.stderr.contains("invalid_request"), "{}", out.stderr);

    // Local input errors, before any request.
    for (args, expected) in [
        (
            &[
                "agent", "create", "x", "--model", MODEL, "--block", "novalue",
            ][..],
            "invalid --block `novalue`: expected LABEL[:SCOPE]=VALUE",
        ),
        (
            &[
                "agent",
                "create",
                "x",
                "--model",
                MODEL,
                "--block-limit",
                "human=lots",
            ],
            "invalid --block-limit",
        ),
        (
            &[
                "agent",
                "create",
                "x",
                "--model",
                MODEL,
                "--instructions-file",
                "/nonexistent/file",
            ],
            "cannot read the instructions file /nonexistent/file",
        ),
        (&["agent", "create", "x"], "--model"),
        (&["agent", "frobnicate"], "frobnicate"),
    ] {
        let out = cli.run(args).await.failed();
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }

    // A wrong key.
    let wrong = Cli {
        key: Some("not-the-key-0123456789".into()),
        ..Cli::new(&server)
    };
    let out = wrong.run(&["agent", "list"]).await.failed();
    assert!(out.stderr.contains("unauthorized"), "{}", out.stderr);
    assert!(out.stderr.contains("ROSTER_API_KEY"), "{}", out.stderr);

    // No key at all, and no admin.key in the data directory.
    let keyless = Cli {
        key: None,
        ..Cli::new(&server)
    };
    let out = keyless.run(&["agent", "list"]).await.failed();
    assert!(
        out.stderr.contains("--api-key") && out.stderr.contains("ROSTER_API_KEY"),
        "{}",
        out.stderr
    );

    // Nobody listening.
    let url = format!("http://127.0.0.1:{}", unused_port());
    let offline = Cli {
        url: url.clone(),
        ..Cli::new(&server)
    };
    for args in [
        &["agent", "list"][..],
        &["chat", "helper"],
        &["run", "show", "run_x"],
    ] {
        let out = offline.run(args).await.failed();
        assert!(out.stderr.contains(&url), "{}", out.stderr);
        assert!(out.stderr.contains("roster serve"), "{}", out.stderr);
    }
    let out = Cli {
        url: "localhost:7700".into(),
        ..Cli::new(&server)
    }
    .run(&["agent", "list"])
    .await
    .failed();
    assert!(out.stderr.contains("http://"), "{}", out.stderr);
}

#[tokio::test]
async fn without_a_key_the_cli_reads_the_generated_admin_key() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let server = Server::start_with_admin_key(&data_dir, &model.openai_base_url(), &[], None).await;
    assert!(data_dir.join("admin.key").exists());

    // Through ROSTER_DATA_DIR.
    let cli = Cli {
        key: None,
        data_dir: data_dir.clone(),
        ..Cli::new(&server)
    };
    cli.run(&["agent", "create", "keyless", "--model", MODEL])
        .await
        .ok();
    // Through --data-dir, after the subcommand.
    let elsewhere = Cli {
        key: None,
        ..Cli::new(&server)
    };
    let out = elsewhere
        .run(&["agent", "list", "--data-dir", path(&data_dir)])
        .await
        .ok();
    assert!(out.stdout.contains("keyless"), "{}", out.stdout);
    // The admin key of the test helper is not valid here.
    let out = Cli::new(&server).run(&["agent", "list"]).await.failed();
    assert!(out.stderr.contains("unauthorized"), "{}", out.stderr);
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
