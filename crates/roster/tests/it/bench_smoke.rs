//! `roster bench` runs end to end and reports what it measured (a smoke
//! test with tiny numbers, not a measurement).

#[test]
fn bench_reports_turns_and_latency() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args([
            "bench",
            "--sessions",
            "3",
            "--turns",
            "4",
            "--history",
            "25",
            "--warmup",
            "1",
        ])
        .env_remove("ROSTER_BENCH_DATABASE_URL")
        .output()
        .expect("run roster bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["turns"], 12);
    assert_eq!(report["history_items"], 25);
    assert!(
        report["turns_per_second"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    assert!(
        report["p99_ms"].as_f64().unwrap_or(-1.0) >= report["p50_ms"].as_f64().unwrap_or(0.0),
        "{report}"
    );
}
