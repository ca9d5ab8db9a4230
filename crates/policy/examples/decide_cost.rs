#![allow(clippy::unwrap_used)]
use roster_policy::*;
use serde_json::json;
use std::time::Instant;
fn main() {
    let mut docs = Vec::new();
    for i in 0..1000 {
        let text = match i % 4 {
            0 => format!(
                r#"permit(principal == Roster::Agent::"agent{i}", action == Roster::Action::"call_tool", resource == Roster::Tool::"tool{i}") when {{ context.amount < {i} }};"#
            ),
            1 => format!(
                r#"forbid(principal, action == Roster::Action::"call_tool", resource == Roster::Tool::"tool{i}") when {{ context has table && context.table == "t{i}" }};"#
            ),
            2 => format!(
                r#"permit(principal == Roster::User::"key{i}", action == Roster::Action::"invoke_agent", resource == Roster::Agent::"agent{i}");"#
            ),
            _ if i % 100 == 3 => format!(
                r#"forbid(principal, action == Roster::Action::"call_tool", resource) when {{ context has path && context.path like "/secret{i}/*" }};"#
            ),
            _ => format!(
                r#"permit(principal == Roster::Agent::"agent{i}", action == Roster::Action::"call_tool", resource) when {{ resource.server == "srv{i}" }};"#
            ),
        };
        docs.push((format!("p{i}"), text));
    }
    let t = Instant::now();
    let set = TenantPolicies::compile(docs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap();
    println!("compile {:?}", t.elapsed());
    let a = json!({"amount": 3, "table": "orders"})
        .as_object()
        .cloned()
        .unwrap();
    let req = PolicyRequest {
        tenant: "ten_1",
        actor: Actor::Agent { name: "agent4" },
        action: Action::CallTool,
        resource: Resource::Tool {
            name: "tool4",
            kind: "builtin",
            server: "",
        },
        user: "ann",
        arguments: Some(&a),
        facts: None,
    };
    let mut times = Vec::new();
    for _ in 0..5000 {
        let t = Instant::now();
        let d = set.decide(&req).unwrap();
        times.push(t.elapsed().as_nanos());
        std::hint::black_box(d);
    }
    times.sort();
    println!(
        "p50 {} ns p99 {} ns {:?}",
        times[2500],
        times[4950],
        set.decide(&req).unwrap()
    );
}
