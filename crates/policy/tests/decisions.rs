//! Decisions of compiled policies: open actions, default deny once governed,
//! forbid over permit, approval annotations, and validation errors.
#![allow(clippy::unwrap_used)]

use roster_policy::{Action, Actor, Decision, PolicyRequest, Resource, TenantPolicies};
use serde_json::{json, Map, Value};

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn call<'a>(
    tool: &'a str,
    arguments: Option<&'a Map<String, Value>>,
    facts: Option<&'a Map<String, Value>>,
) -> PolicyRequest<'a> {
    PolicyRequest {
        tenant: "ten_1",
        actor: Actor::Agent { name: "analyst" },
        action: Action::CallTool,
        resource: Resource::Tool {
            name: tool,
            kind: "builtin",
            server: "",
        },
        user: "ann",
        arguments,
        facts,
    }
}

#[test]
fn no_policies_leave_every_action_open() {
    let policies = TenantPolicies::compile([]).unwrap();
    let a = args(json!({"amount": 1}));
    assert_eq!(
        policies.decide(&call("pay", Some(&a), None)).unwrap(),
        Decision::Allow { policies: vec![] }
    );
}

#[test]
fn a_tool_policy_makes_tools_default_deny_but_leaves_invocation_open() {
    let policies = TenantPolicies::compile([(
        "orders-only",
        r#"permit(principal == Roster::Agent::"analyst", action == Roster::Action::"call_tool", resource == Roster::Tool::"sql_query") when { context.table == "orders" };"#,
    )]).unwrap();
    let orders = args(json!({"table": "orders"}));
    let users = args(json!({"table": "users"}));
    assert!(matches!(
        policies
            .decide(&call("sql_query", None, Some(&orders)))
            .unwrap(),
        Decision::Allow { .. }
    ));
    let denied = policies
        .decide(&call("sql_query", None, Some(&users)))
        .unwrap();
    assert!(matches!(denied, Decision::Deny { .. }), "{denied:?}");
    let other = policies.decide(&call("run_code", None, None)).unwrap();
    match other {
        Decision::Deny { reason, .. } => assert!(
            reason.contains("no policy permits agent `analyst` to call_tool tool `run_code`"),
            "{reason}"
        ),
        d => panic!("{d:?}"),
    }
    let invoke = PolicyRequest {
        tenant: "ten_1",
        actor: Actor::User {
            id: "key_1",
            name: "ann",
            kind: "user",
        },
        action: Action::InvokeAgent,
        resource: Resource::Agent { name: "analyst" },
        user: "ann",
        arguments: None,
        facts: None,
    };
    assert!(matches!(
        policies.decide(&invoke).unwrap(),
        Decision::Allow { .. }
    ));
}

#[test]
fn approval_annotation_and_forbid() {
    let policies = TenantPolicies::compile([
        ("pay", r#"permit(principal, action == Roster::Action::"call_tool", resource == Roster::Tool::"pay") when { context.amount < 500 };
@approval("payments of 500 or more need a manager")
permit(principal, action == Roster::Action::"call_tool", resource == Roster::Tool::"pay") when { context.amount >= 500 };"#),
        ("no-huge", r#"forbid(principal, action == Roster::Action::"call_tool", resource) when { context has amount && context.amount > 10000 };"#),
    ]).unwrap();
    let small = args(json!({"amount": 20}));
    let big = args(json!({"amount": 700}));
    let huge = args(json!({"amount": 70000}));
    let fractional = args(json!({"amount": 499.5}));
    assert_eq!(
        policies.decide(&call("pay", Some(&small), None)).unwrap(),
        Decision::Allow {
            policies: vec!["pay[1]".into()]
        }
    );
    assert_eq!(
        policies.decide(&call("pay", Some(&big), None)).unwrap(),
        Decision::NeedsApproval {
            policies: vec!["pay[2]".into()],
            reason: "payments of 500 or more need a manager".into()
        }
    );
    match policies.decide(&call("pay", Some(&huge), None)).unwrap() {
        Decision::Deny { policies, reason } => {
            assert_eq!(policies, vec!["no-huge".to_string()]);
            assert!(reason.contains("forbidden by policy `no-huge`"), "{reason}");
        }
        d => panic!("{d:?}"),
    }
    // A decimal compared with a Long fails to evaluate: denied, and the reason says why.
    match policies
        .decide(&call("pay", Some(&fractional), None))
        .unwrap()
    {
        Decision::Deny { reason, .. } => assert!(reason.contains("failed to evaluate"), "{reason}"),
        d => panic!("{d:?}"),
    }
}

#[test]
fn bad_policies_are_rejected_with_the_validators_message() {
    for (text, expected) in [
        (
            "permit(principal, action, resource",
            "unexpected end of input",
        ),
        (
            r#"permit(principal == Roster::Robot::"a", action, resource);"#,
            "unrecognized entity type `Roster::Robot`",
        ),
        (
            r#"permit(principal, action == Roster::Action::"fly", resource);"#,
            "unrecognized action",
        ),
        (
            r#"permit(principal, action == Roster::Action::"invoke_agent", resource) when { principal.nme == "x" };"#,
            "attribute `nme`",
        ),
        (
            r#"permit(principal, action == Roster::Action::"invoke_agent", resource) when { context.amount < 5 };"#,
            "amount",
        ),
        (
            r#"permit(principal, action == Roster::Action::"call_tool", resource) when { context.user == 3 };"#,
            "not compatible",
        ),
        ("// nothing", "holds no Cedar policy"),
        (
            r#"permit(principal == ?principal, action, resource);"#,
            "templates",
        ),
    ] {
        let err = TenantPolicies::compile([("p", text)])
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{text}: {err}");
    }
    // Tool arguments are open-ended: any attribute of call_tool's context passes.
    TenantPolicies::compile([("ok", r#"permit(principal, action == Roster::Action::"call_tool", resource) when { context.amount < 500 && context.path like "/data/*" };"#)]).unwrap();
}

#[test]
fn self_approval_needs_its_own_annotation() {
    let policies = TenantPolicies::compile([
        ("pay", r#"@approval("big payments need a manager")
permit(principal, action == Roster::Action::"call_tool", resource == Roster::Tool::"pay");"#),
        ("notes", r#"@approval("a second look")
@self_approval("the writer may confirm")
permit(principal, action == Roster::Action::"call_tool", resource == Roster::Tool::"note");"#),
        ("open", r#"permit(principal, action == Roster::Action::"call_tool", resource == Roster::Tool::"read");"#),
    ])
    .unwrap();
    assert!(!policies.allows_self_approval(&["pay".into()]));
    assert!(policies.allows_self_approval(&["notes".into()]));
    // Every approving policy must allow it; a plain permit beside it does not count.
    assert!(!policies.allows_self_approval(&["notes".into(), "pay".into()]));
    assert!(policies.allows_self_approval(&["notes".into(), "open".into()]));
    // A policy removed since the request (or none at all) keeps the safe default.
    assert!(!policies.allows_self_approval(&["gone".into()]));
    assert!(!policies.allows_self_approval(&[]));
}

#[test]
fn self_approval_without_approval_is_rejected() {
    let err = TenantPolicies::compile([(
        "odd",
        r#"@self_approval("yes")
permit(principal, action == Roster::Action::"call_tool", resource);"#,
    )])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("@self_approval only applies beside @approval"),
        "{err}"
    );
}
