//! Integrations (MCP servers and other company systems) on both backends:
//! one per tenant, kind and name; invisible to other tenants.

mod common;

use roster_core::TenantId;
use roster_store::{DynStore, NewIntegration, StoreError};
use serde_json::json;

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
        .create_integration(&a, new("files"))
        .await
        .expect("create");
    assert_eq!(created.name, "files");
    assert_eq!(created.sealed.as_deref(), Some("v1.sealed"));
    assert_eq!(created.config["command"], "x");
    let err = store
        .create_integration(&a, new("files"))
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Same name in another tenant, or another kind: no conflict.
    store.create_integration(&b, new("files")).await.expect("b");
    let mut sql = new("files");
    sql.kind = "sql".into();
    store.create_integration(&a, sql).await.expect("other kind");
    store.create_integration(&a, new("crm")).await.expect("crm");

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
        .delete_integration(&other, "mcp", "files")
        .await
        .expect("delete"));
    assert!(store
        .delete_integration(&a, "mcp", "files")
        .await
        .expect("delete"));
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
