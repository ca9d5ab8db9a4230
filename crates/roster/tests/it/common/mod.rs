//! Starts the real `roster` binary for end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Runs the CLI against `server` with the admin key; returns (success,
/// stdout, stderr).
pub fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    cli_with_key(server, ADMIN_KEY, args)
}

/// Runs the CLI against `server` with `key`.
pub fn cli_with_key(server: &Server, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env("ROSTER_URL", &server.url)
        .env("ROSTER_API_KEY", key)
        .output()
        .expect("run cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` until it finds something, failing the test after `limit`.
pub async fn until<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts `roster serve` on a free loopback port with the given model
    /// server as provider `openai`, and waits until `/healthz` answers.
    pub async fn start(
        data_dir: &Path,
        openai_base_url: &str,
        extra_env: &[(&str, &str)],
    ) -> Server {
        Self::start_with_admin_key(data_dir, openai_base_url, extra_env, Some(ADMIN_KEY)).await
    }

    /// Like [`Server::start`]; with `admin_key: None` the server runs without
    /// `ROSTER_ADMIN_KEY`, so on first start it generates a key and writes it
    /// to `<data_dir>/admin.key`.
    pub async fn start_with_admin_key(
        data_dir: &Path,
        openai_base_url: &str,
        extra_env: &[(&str, &str)],
        admin_key: Option<&str>,
    ) -> Server {
        let mut command = serve_command(data_dir);
        command
            .env("OPENAI_API_KEY", "sk-test")
            .env("OPENAI_BASE_URL", openai_base_url);
        match admin_key {
            Some(key) => command.env("ROSTER_ADMIN_KEY", key),
            None => command.env_remove("ROSTER_ADMIN_KEY"),
        };
        Self::spawn(command, data_dir, extra_env).await
    }

    /// Starts `roster serve` with no model provider configured and no
    /// provider key in its environment: the server offers its built-in
    /// model, found in `model_cache`.
    pub async fn start_without_providers(data_dir: &Path, model_cache: &Path) -> Server {
        let mut command = serve_command(data_dir);
        command
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env("ROSTER_ADMIN_KEY", ADMIN_KEY)
            .env("ROSTER_MODEL_CACHE", model_cache);
        Self::spawn(command, data_dir, &[]).await
    }

    async fn spawn(mut command: Command, data_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        let port = free_port();
        command.args(["--listen", &format!("127.0.0.1:{port}")]);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start roster");
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/healthz", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("roster did not become healthy at {}", self.url);
    }

    pub fn kill(&mut self) {
        // SIGKILL: no chance to clean up, like a crash or an OOM kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn client(&self) -> Api {
        self.client_with_key(ADMIN_KEY)
    }

    /// An API client using `key`.
    pub fn client_with_key(&self, key: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            url: self.url.clone(),
            key: key.to_owned(),
        }
    }
}

/// `roster serve --data-dir DIR` with the environment every test server
/// shares; the listen address is added when it is spawned.
fn serve_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ROSTER_DATABASE_URL")
        .env("ROSTER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub key: String,
}

impl Api {
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A fresh PostgreSQL database for one test, or `None` with a notice when
/// `ROSTER_TEST_DATABASE_URL` is unset. In CI a missing URL fails the test.
pub async fn postgres_url() -> Option<String> {
    let Ok(url) = std::env::var("ROSTER_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set ROSTER_TEST_DATABASE_URL"
        );
        eprintln!(
            "notice: ROSTER_TEST_DATABASE_URL is not set; skipping a PostgreSQL end-to-end test"
        );
        return None;
    };
    Some(
        roster_store_sql::postgres::create_test_database(&url)
            .await
            .expect("create test database"),
    )
}

/// Whether `python3` can import `module` (a real client the e2e tests
/// drive); without it a test is skipped with a notice, except in CI, where
/// `.ci/run` installs it and a missing module fails the test.
pub fn python_has(module: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Python package `{module}` (see .ci/run)"
        );
        eprintln!("notice: python3 cannot import `{module}`; skipping a real-client test");
    }
    found
}

/// Runs a client script from `tests/clients` with `args`; panics with its
/// output unless it exits 0 and its last line is `ok`.
pub fn run_client_script(script: &str, args: &[&str]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let output = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
