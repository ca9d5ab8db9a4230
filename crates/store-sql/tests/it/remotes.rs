//! Remote A2A agents on both backends: each session's conversation with a
//! remote, kept per registration and tenant; a refreshed card replacing a
//! registration's config (id, credential and conversations kept, audited
//! in the same transaction); a removal taking the conversations; a deleted
//! session taking its own.

use crate::common;

use roster_core::agent::NewAgent;
use roster_core::{SessionId, TenantId};
use roster_store::remotes::RemoteContext;
use roster_store::{AuditQuery, DynStore, NewAuditEvent, NewIntegration};
use serde_json::json;

fn audit(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "key:key_test".into(),
        action: action.into(),
        resource: "a2a:billing".into(),
        decision: None,
        detail: json!({}),
    }
}

fn context(id: &str, task: Option<&str>) -> Option<RemoteContext> {
    Some(RemoteContext {
        context_id: id.into(),
        task_id: task.map(str::to_owned),
    })
}

async fn story(store: DynStore) {
    let tenant = TenantId::generate();
    let other = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let agent = store
        .create_agent(
            &tenant,
            NewAgent {
                name: "caller".into(),
                config: serde_json::from_value(json!({"instructions": "", "model": "openai/m"}))
                    .expect("config"),
                memory_blocks: vec![],
            },
            "key:key_test",
        )
        .await
        .expect("agent");
    let session = store
        .create_session(&tenant, &agent.id, 1)
        .await
        .expect("session")
        .id;
    let remote = store
        .create_integration(
            &tenant,
            NewIntegration::new(
                "a2a",
                "billing",
                json!({"card": {"name": "One"}}),
                Some("v1.sealed".into()),
            ),
            audit("a2a.add"),
        )
        .await
        .expect("register");

    assert_eq!(
        store
            .remote_context(&tenant, &remote.id, &session)
            .await
            .expect("read"),
        None
    );
    store
        .set_remote_context(&tenant, &remote.id, &session, Some("ctx-1"), Some("task-1"))
        .await
        .expect("set");
    assert_eq!(
        store
            .remote_context(&tenant, &remote.id, &session)
            .await
            .expect("read"),
        context("ctx-1", Some("task-1"))
    );
    // An answer replaces it (the waiting task answered).
    store
        .set_remote_context(&tenant, &remote.id, &session, Some("ctx-1"), None)
        .await
        .expect("replace");
    assert_eq!(
        store
            .remote_context(&tenant, &remote.id, &session)
            .await
            .expect("read"),
        context("ctx-1", None)
    );
    // Another tenant, session or registration sees none of it.
    assert_eq!(
        store
            .remote_context(&other, &remote.id, &session)
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store
            .remote_context(&tenant, &remote.id, &SessionId::generate())
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store
            .remote_context(&tenant, "int_other", &session)
            .await
            .expect("read"),
        None
    );
    // Forgetting.
    let other_session = SessionId::generate();
    store
        .set_remote_context(&tenant, &remote.id, &other_session, Some("ctx-2"), None)
        .await
        .expect("set");
    store
        .set_remote_context(&tenant, &remote.id, &other_session, None, None)
        .await
        .expect("forget");
    assert_eq!(
        store
            .remote_context(&tenant, &remote.id, &other_session)
            .await
            .expect("read"),
        None
    );

    // A refresh replaces the config and nothing else, strictly later.
    let refreshed = store
        .update_integration_config(
            &tenant,
            "a2a",
            "billing",
            json!({"card": {"name": "Two"}}),
            audit("a2a.refresh"),
        )
        .await
        .expect("refresh")
        .expect("found");
    assert_eq!(refreshed.id, remote.id);
    assert_eq!(refreshed.config["card"]["name"], "Two");
    assert_eq!(refreshed.sealed.as_deref(), Some("v1.sealed"));
    assert!(refreshed.updated_at > remote.updated_at);
    assert!(store
        .update_integration_config(&other, "a2a", "billing", json!({}), audit("a2a.refresh"))
        .await
        .expect("other tenant")
        .is_none());
    assert!(store
        .remote_context(&tenant, &remote.id, &session)
        .await
        .expect("read")
        .is_some());

    // Deleting the session takes its conversation.
    store
        .set_remote_context(&tenant, &remote.id, &other_session, Some("ctx-3"), None)
        .await
        .expect("set");
    store
        .delete_session(&tenant, &session, audit("session.delete"))
        .await
        .expect("delete session");
    assert_eq!(
        store
            .remote_context(&tenant, &remote.id, &session)
            .await
            .expect("read"),
        None
    );
    assert!(store
        .remote_context(&tenant, &remote.id, &other_session)
        .await
        .expect("read")
        .is_some());

    // Removing the remote takes every conversation with it.
    assert!(!store
        .delete_remote(&other, "a2a", "billing", audit("a2a.remove"))
        .await
        .expect("other tenant"));
    assert!(store
        .delete_remote(&tenant, "a2a", "billing", audit("a2a.remove"))
        .await
        .expect("remove"));
    assert!(store
        .get_integration(&tenant, "a2a", "billing")
        .await
        .expect("get")
        .is_none());
    assert_eq!(
        store
            .remote_context(&tenant, &remote.id, &other_session)
            .await
            .expect("read"),
        None
    );
    assert!(!store
        .delete_remote(&tenant, "a2a", "billing", audit("a2a.remove"))
        .await
        .expect("again"));

    let actions: Vec<String> = store
        .list_audit(
            &tenant,
            &AuditQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("a2a."))
        .collect();
    assert_eq!(actions, ["a2a.add", "a2a.refresh", "a2a.remove"]);
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
