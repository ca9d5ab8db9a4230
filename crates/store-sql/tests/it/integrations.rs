//! Integrations (MCP servers and other company systems) on both backends:
//! one per tenant, kind and name; invisible to other tenants; every
//! registration and removal audited in its own transaction.

use crate::common;

use roster_core::TenantId;
use roster_store::{AuditQuery, DynStore, NewAuditEvent, NewIntegration, StoreError};
use serde_json::json;

fn audit(action: &str, name: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "key:key_test".into(),
        action: action.into(),
        resource: format!("mcp:{name}"),
        decision: None,
        detail: json!({"name": name}),
    }
}

async fn trail(store: &DynStore, tenant: &TenantId) -> Vec<(String, String, String)> {
    store
        .list_audit(
            tenant,
            &AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.action, e.actor, e.resource))
        .collect()
}

fn new(name: &str) -> NewIntegration {
    NewIntegration {
        id: format!("int_{name}_{}", TenantId::generate()),
        kind: "mcp".into(),
        name: name.into(),
        config: json!({"transport": "stdio", "command": "x", "args": []}),
        sealed: Some("v1.sealed".into()),
    }
}

async fn story(store: DynStore) {
    let a = TenantId::generate();
    let b = TenantId::generate();
    store.ensure_tenant(&a, "A").await.expect("tenant");
    store.ensure_tenant(&b, "B").await.expect("tenant");
    let created = store
        .create_integration(&a, new("files"), audit("mcp.add", "files"))
        .await
        .expect("create");
    assert_eq!(created.name, "files");
    assert_eq!(created.sealed.as_deref(), Some("v1.sealed"));
    assert_eq!(created.config["command"], "x");
    let err = store
        .create_integration(&a, new("files"), audit("mcp.add", "files"))
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Same name in another tenant, or another kind: no conflict.
    store
        .create_integration(&b, new("files"), audit("mcp.add", "files"))
        .await
        .expect("b");
    let mut sql = new("files");
    sql.kind = "sql".into();
    store
        .create_integration(&a, sql, audit("sql.add", "files"))
        .await
        .expect("other kind");
    store
        .create_integration(&a, new("crm"), audit("mcp.enable", "crm"))
        .await
        .expect("crm");

    let names: Vec<String> = store
        .list_integrations(&a, "mcp")
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["crm", "files"]);
    let other = TenantId::generate();
    assert!(store
        .get_integration(&other, "mcp", "files")
        .await
        .expect("get")
        .is_none());
    assert!(!store
        .delete_integration(&other, "mcp", "files", audit("mcp.remove", "files"))
        .await
        .expect("delete"));
    assert!(store
        .delete_integration(&a, "mcp", "files", audit("mcp.remove", "files"))
        .await
        .expect("delete"));
    assert!(!store
        .delete_integration(&a, "mcp", "files", audit("mcp.remove", "files"))
        .await
        .expect("again"));
    assert!(store
        .get_integration(&a, "mcp", "files")
        .await
        .expect("get")
        .is_none());
    // B's is untouched.
    assert!(store
        .get_integration(&b, "mcp", "files")
        .await
        .expect("get")
        .is_some());

    // Each change that happened is audited once, with its actor; the
    // refused duplicate and the removals of nothing left no row.
    let row = |action: &str, resource: &str| {
        (
            action.to_owned(),
            "key:key_test".to_owned(),
            resource.to_owned(),
        )
    };
    assert_eq!(
        trail(&store, &a).await,
        vec![
            row("mcp.add", "mcp:files"),
            row("sql.add", "mcp:files"),
            row("mcp.enable", "mcp:crm"),
            row("mcp.remove", "mcp:files"),
        ]
    );
    assert_eq!(trail(&store, &b).await, vec![row("mcp.add", "mcp:files")]);
    assert!(trail(&store, &other).await.is_empty());
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    story(common::sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres() {
    if let Some(store) = common::postgres().await {
        story(store).await;
    }
}
