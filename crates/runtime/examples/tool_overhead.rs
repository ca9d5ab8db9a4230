//! What the tool machinery adds to a call, without the journal's durable
//! commits (measured per turn by `roster bench`): resolving the agent's
//! entries, parsing the model's argument text, checking it against the
//! tool's schema, the timeout wrapper and the output cut — against calling
//! the same tool directly with parsed arguments, in the same command.
//!
//! `cargo run --release -p roster-runtime --example tool_overhead`

use roster_core::{AgentId, RunId, SessionId, TenantId};
use roster_runtime::bench::EchoTool;
use roster_runtime::tools::{truncate_output, Tool, ToolCallContext, ToolKind, ToolRegistry};
use std::sync::Arc;
use std::time::Instant;

const CALLS: usize = 200_000;

fn summary(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    (at(50), at(99))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut registry = ToolRegistry::with_builtins();
    registry.register(Arc::new(EchoTool));
    let tenant = TenantId::generate();
    let ctx = ToolCallContext {
        tenant: tenant.clone(),
        agent_id: AgentId::generate(),
        session_id: SessionId::generate(),
        run_id: RunId::generate(),
        call_id: "call_1".into(),
    };
    let entries = vec!["echo".to_owned(), "memory_search".to_owned()];
    let raw = r#"{"text":"the weather in Paris is sunny"}"#;
    let direct_tool = EchoTool;

    let mut direct = Vec::with_capacity(CALLS);
    let mut through = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let arguments: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
        let started = Instant::now();
        let out = direct_tool.call(&ctx, arguments).await;
        direct.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(!out.is_error);

        let started = Instant::now();
        let resolved = registry.resolve(&tenant, &entries).await;
        let tool = resolved.get("echo").expect("echo");
        let arguments: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
        tool.check_arguments(&arguments).expect("valid");
        let ToolKind::External(external) = &tool.kind else {
            panic!("echo is external");
        };
        let out = tokio::time::timeout(external.timeout(), external.call(&ctx, arguments))
            .await
            .expect("in time");
        let text = truncate_output(out.text, external.max_output_bytes());
        through.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(!text.is_empty());
    }
    let (d50, d99) = summary(direct);
    let (t50, t99) = summary(through);
    let round = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        serde_json::json!({
            "calls": CALLS,
            "direct_p50_us": round(d50), "direct_p99_us": round(d99),
            "through_runtime_p50_us": round(t50), "through_runtime_p99_us": round(t99),
            "overhead_p50_us": round(t50 - d50),
        })
    );
}
