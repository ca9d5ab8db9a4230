//! What authorising a tool call costs with 1,000 policies in the tenant:
//! the revision check (one indexed read of the store), the compiled set
//! (kept per revision), and Cedar's decision on the policies whose scope can
//! match — against the same call in a tenant with one policy, in the same
//! command. Then what recording the decision in the audit log adds (one
//! durable write).
//!
//! `cargo run --release -p roster-runtime --example authorize_cost`

use roster_core::TenantId;
use roster_policy::{Action, Actor, PolicyRequest, Resource};
use roster_runtime::governance::{Governance, Subject};
use roster_store::NewAuditEvent;
use serde_json::json;
use std::time::Instant;

const CALLS: usize = 20_000;
const RECORDED: usize = 500;

fn summary(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    (at(50), at(99))
}

fn event() -> NewAuditEvent {
    NewAuditEvent {
        actor: "bench".into(),
        action: "policy.put".into(),
        resource: "policy".into(),
        decision: None,
        detail: json!({}),
    }
}

/// 1,000 policies as a tenant with 100 agents might write them: each agent
/// permitted a few tools on conditions, ten tenant-wide forbids, and who
/// may invoke whom.
fn thousand() -> Vec<(String, String)> {
    (0..1000)
        .map(|i| {
            let text = match i % 10 {
                0 if i % 100 == 0 => format!(
                    r#"forbid(principal, action == Roster::Action::"call_tool", resource) when {{ context has path && context.path like "/secret{i}/*" }};"#
                ),
                0..=5 => format!(
                    r#"permit(principal == Roster::Agent::"agent{}", action == Roster::Action::"call_tool", resource == Roster::Tool::"tool{i}") when {{ context.amount < {i} }};"#,
                    i % 100
                ),
                6 | 7 => format!(
                    r#"permit(principal == Roster::Agent::"agent{}", action == Roster::Action::"call_tool", resource) when {{ resource.server == "srv{i}" }};"#,
                    i % 100
                ),
                _ => format!(
                    r#"permit(principal, action == Roster::Action::"invoke_agent", resource == Roster::Agent::"agent{}");"#,
                    i % 100
                ),
            };
            (format!("p{i:04}"), text)
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("roster.db").display());
    let store = roster_store_sql::open(&url).await.expect("store");
    let (big, small) = (TenantId::generate(), TenantId::generate());
    for (tenant, documents) in [
        (&big, thousand()),
        (
            &small,
            vec![(
                "only".to_owned(),
                r#"permit(principal == Roster::Agent::"agent7", action == Roster::Action::"call_tool", resource == Roster::Tool::"tool7") when { context.amount < 100 };"#.to_owned(),
            )],
        ),
    ] {
        store.ensure_tenant(tenant, "bench").await.expect("tenant");
        for (revision, (name, text)) in (0..).zip(&documents) {
            store
                .put_policy(tenant, name, text, revision, event())
                .await
                .expect("policy");
        }
    }
    let governance = Governance::new(store.clone());
    let arguments = json!({"amount": 3, "path": "/data/x"});
    let arguments = arguments.as_object().expect("object");
    fn request<'a>(
        tenant: &'a TenantId,
        arguments: &'a serde_json::Map<String, serde_json::Value>,
    ) -> PolicyRequest<'a> {
        PolicyRequest {
            tenant: tenant.as_str(),
            actor: Actor::Agent { name: "agent7" },
            action: Action::CallTool,
            resource: Resource::Tool {
                name: "tool7",
                kind: "mcp",
                server: "srv7",
            },
            user: "ann",
            arguments: Some(arguments),
            facts: None,
        }
    }
    let (big_request, small_request) = (request(&big, arguments), request(&small, arguments));
    // Warm: compile both sets once, as the first call of a revision does.
    let started = Instant::now();
    let compiled = governance.policies(&big).await.expect("compile");
    let compile_ms = started.elapsed().as_secs_f64() * 1e3;
    assert!(compiled.is_ok_and(|p| p.len() == 1000));
    governance
        .evaluate(&small, &small_request)
        .await
        .expect("warm");

    let (mut baseline, mut thousand_times) = (Vec::new(), Vec::new());
    for _ in 0..CALLS {
        let started = Instant::now();
        let decision = governance
            .evaluate(&small, &small_request)
            .await
            .expect("small");
        baseline.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(decision.is_some());
        let started = Instant::now();
        let decision = governance.evaluate(&big, &big_request).await.expect("big");
        thousand_times.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(
            matches!(decision, Some(roster_policy::Decision::Allow { .. })),
            "{decision:?}"
        );
    }
    let mut recorded = Vec::new();
    for _ in 0..RECORDED {
        let started = Instant::now();
        governance
            .decide(
                &big,
                &big_request,
                Subject {
                    actor: "key:k > agent:agent7 > tool:tool7",
                    resource: "tool:tool7",
                    at: json!({}),
                },
            )
            .await
            .expect("decide");
        recorded.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let (b50, b99) = summary(baseline);
    let (t50, t99) = summary(thousand_times);
    let (r50, r99) = summary(recorded);
    println!("compile 1,000 policies (once per revision): {compile_ms:.1} ms");
    println!("authorise, 1 policy (baseline):   p50 {b50:.1} µs  p99 {b99:.1} µs");
    println!("authorise, 1,000 policies:        p50 {t50:.1} µs  p99 {t99:.1} µs  ({:.2}× the baseline p50)", t50 / b50);
    println!("authorise and record (audit row): p50 {r50:.1} µs  p99 {r99:.1} µs");
}
