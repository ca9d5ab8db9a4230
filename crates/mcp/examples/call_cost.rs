//! MCP stdio round trip through Roster's manager (the server confined by
//! bubblewrap, as Roster always runs it), against the same server answering
//! the same request over a bare JSON-RPC pipe written here (the baseline:
//! the server's own time plus a pipe), measured in one command. Absolute
//! paths among the command and its arguments are shown to the sandbox
//! read-only (their directories).
//!
//! `cargo run --release -p roster-mcp --example call_cost -- COMMAND [ARGS…]`
//! e.g. `… -- node ~/.cache/roster/mcp-servers/node_modules/.bin/mcp-server-everything`
//! (calls its `echo` tool 2,000 times each way).

use roster_core::TenantId;
use roster_mcp::{McpManager, McpOptions, McpServerInput};
use roster_secrets::SecretBox;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CALLS: usize = 2_000;

fn summary(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    (at(50), at(99))
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (program, args) = argv
        .split_first()
        .expect("usage: call_cost COMMAND [ARGS…]");

    // Baseline: a bare client on the server's stdin/stdout.
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let send = |value: serde_json::Value| {
        let mut line = value.to_string();
        line.push('\n');
        line
    };
    let init = send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}),
    );
    stdin.write_all(init.as_bytes()).await.expect("write");
    lines.next_line().await.expect("read");
    let done = send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    stdin.write_all(done.as_bytes()).await.expect("write");
    let mut bare = Vec::with_capacity(CALLS);
    for id in 1..=CALLS {
        let request = send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}}}));
        let started = Instant::now();
        stdin.write_all(request.as_bytes()).await.expect("write");
        loop {
            let line = lines.next_line().await.expect("read").expect("line");
            if line.contains(&format!("\"id\":{id}")) {
                break;
            }
        }
        bare.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    drop(child);

    // Through Roster: registration, manager, rmcp, result rendering.
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let read_only: Vec<String> = std::iter::once(program)
        .chain(args)
        .map(Path::new)
        .filter(|p| p.is_absolute() && p.exists() && !p.starts_with("/usr"))
        .filter_map(|p| p.parent().map(|d| d.display().to_string()))
        .collect();
    let input: McpServerInput = serde_json::from_value(
        json!({"name": "bench", "command": program, "args": args, "read_only": read_only}),
    )
    .expect("input");
    let mut options = McpOptions::new(dir.path().join("mcp"));
    let jail = roster_sandbox::Jail::open("bwrap".into(), &dir.path().join(".probe"))
        .await
        .expect("bubblewrap works here");
    options.jail = Some(Arc::new(jail));
    let manager = McpManager::new(
        store,
        SecretBox::from_base64(&SecretBox::generate_key()).expect("key"),
        options,
    );
    let name = manager
        .register(&tenant, input, "key:bench", true)
        .await
        .expect("register")
        .name;
    let timeout = Duration::from_secs(10);
    manager
        .call(&tenant, &name, "echo", json!({"message": "hi"}), timeout)
        .await;
    let mut roster = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let out = manager
            .call(&tenant, &name, "echo", json!({"message": "hi"}), timeout)
            .await;
        roster.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(!out.is_error, "{}", out.text);
    }
    manager.shutdown().await;
    let (b50, b99) = summary(bare);
    let (r50, r99) = summary(roster);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    println!(
        "{}",
        json!({
            "calls": CALLS,
            "bare_pipe_p50_ms": round(b50), "bare_pipe_p99_ms": round(b99),
            "roster_p50_ms": round(r50), "roster_p99_ms": round(r99),
            "overhead_p50_ms": round(r50 - b50),
        })
    );
}
