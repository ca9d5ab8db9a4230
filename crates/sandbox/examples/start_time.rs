//! Sandbox start time: a trivial program per language, run N times in a
//! fresh sandbox each, against the same interpreter started directly (the
//! baseline, measured in the same command).
//!
//! `cargo run --release -p roster-sandbox --example start_time -- 200`

use roster_core::{SessionId, TenantId};
use roster_sandbox::{Language, Sandbox, SandboxConfig};
use std::time::Instant;

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn summary(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (percentile(&times, 50), percentile(&times, 99))
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("dir");
    let config = SandboxConfig::new(dir.path().join("workspaces"));
    let limits = config.limits.clone();
    let sandbox = Sandbox::open(config.clone()).await.expect("sandbox");
    let tenant = TenantId::generate();
    let session = SessionId::generate();
    let cases = [
        (Language::Shell, "true", &config.shell, "-c"),
        (Language::Python, "pass", &config.python, "-c"),
        (Language::Javascript, "0", &config.node, "-e"),
    ];
    for (language, code, program, flag) in cases {
        let mut sandboxed = Vec::with_capacity(runs);
        let mut direct = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let out = sandbox
                .run(&tenant, &session, language, code, &limits)
                .await
                .expect("run");
            sandboxed.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(out.exit_code, Some(0), "{out:?}");
            let started = Instant::now();
            let status = tokio::process::Command::new(program)
                .args([flag, code])
                .status()
                .await
                .expect("direct");
            direct.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(status.success());
        }
        let (s50, s99) = summary(sandboxed);
        let (d50, d99) = summary(direct);
        println!(
            "{}",
            serde_json::json!({
                "language": format!("{language:?}").to_lowercase(),
                "runs": runs,
                "sandboxed_p50_ms": (s50 * 100.0).round() / 100.0,
                "sandboxed_p99_ms": (s99 * 100.0).round() / 100.0,
                "direct_p50_ms": (d50 * 100.0).round() / 100.0,
                "direct_p99_ms": (d99 * 100.0).round() / 100.0,
                "sandbox_overhead_p50_ms": ((s50 - d50) * 100.0).round() / 100.0,
            })
        );
    }
}
