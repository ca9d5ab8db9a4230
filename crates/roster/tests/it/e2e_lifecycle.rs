//! Server lifecycle: one server per data directory, and a stop (SIGTERM)
//! that does not hang on open requests and loses nothing.

use crate::common;

use common::Server;
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let second = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("ROSTER_ADMIN_KEY", common::ADMIN_KEY)
        .stdout(Stdio::null())
        .output()
        .expect("run a second server");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another roster server is using the data directory"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let model = FakeModelServer::start().await;
    let (first_dir, second_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let env = [("ROSTER_DATABASE_URL", url.as_str())];
    let _first = Server::start(first_dir.path(), &model.openai_base_url(), &env).await;
    let second = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(second_dir.path())
        .env("ROSTER_ADMIN_KEY", common::ADMIN_KEY)
        .env("ROSTER_DATABASE_URL", &url)
        .stdout(Stdio::null())
        .output()
        .expect("run a second server");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another roster server is using this database"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_stops_promptly_and_the_waiting_run_resumes_later() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    let (status, _) = api
        .post("/v1/agents", json!({"name": "slow", "model": "openai/m"}))
        .await;
    assert_eq!(status, 201);
    let (_, session) = api.post("/v1/sessions", json!({"agent": "slow"})).await;
    let sid = session["id"].as_str().expect("id").to_owned();
    model.push(Reply::text("never").hang());
    // A client waiting on a run that will not finish before the stop.
    let waiting = {
        let url = format!("{}/v1/sessions/{sid}/messages", server.url);
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(common::ADMIN_KEY)
                .json(&json!({"content": "take your time"}))
                .send()
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while model.request_count() == 0 {
        assert!(Instant::now() < deadline, "the model was never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "the server did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let _ = waiting.await;

    // The interrupted run resumes at the next start and completes.
    model.push(Reply::text("done at last"));
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, items) = api.get(&format!("/v1/sessions/{sid}/items")).await;
        let texts: Vec<String> = items["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["text"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if texts == ["take your time", "done at last"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not resume: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rotating_the_admin_key_away_and_back_works() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (k1, k2) = ("first-admin-key-0123456789", "second-admin-key-0123456789");
    let status = |server: &Server, key: &'static str| {
        let url = format!("{}/v1/agents", server.url);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    for (current, old) in [(k1, k2), (k2, k1), (k1, k2)] {
        let server = Server::start(
            dir.path(),
            &model.openai_base_url(),
            &[("ROSTER_ADMIN_KEY", current)],
        )
        .await;
        assert_eq!(status(&server, current).await, 200, "{current} works");
        assert_eq!(status(&server, old).await, 401, "{old} is revoked");
        drop(server);
    }
}
