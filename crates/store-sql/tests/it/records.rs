//! Memory records and the search log: one story against both backends.

use crate::common;

use chrono::{Duration, Utc};
use roster_core::record::Provenance;
use roster_core::{MemoryId, TenantId};
use roster_store::{
    DynStore, Embedding, EmbeddingUpdate, MemoryOp, MemoryQuery, MemoryWrite, RowKind, StoreError,
};
use serde_json::json;

fn write(op: MemoryOp) -> MemoryWrite {
    MemoryWrite {
        op,
        principal: "key:test".into(),
        run_id: None,
    }
}

fn create(namespace: &str, content: &str, key: Option<&str>) -> MemoryOp {
    MemoryOp::Create {
        id: MemoryId::generate(),
        namespace: namespace.into(),
        kind: "fact".into(),
        key: key.map(str::to_owned),
        content: content.into(),
        metadata: json!({"topic": "drinks"}),
        source: Some(Provenance {
            from_seq: Some(1),
            to_seq: Some(4),
            ..Provenance::default()
        }),
        expires_at: None,
        embedding: None,
    }
}

async fn story(store: DynStore) {
    let a = TenantId::generate();
    let b = TenantId::generate();
    store.ensure_tenant(&a, "A").await.expect("tenant a");
    store.ensure_tenant(&b, "B").await.expect("tenant b");
    let head0 = store.search_log_head().await.expect("head");

    // Create: version 1, a history entry, a log entry.
    let tea = store
        .write_memories(&a, vec![write(create("agents/x", "Ada likes tea", None))])
        .await
        .expect("create");
    let record = tea.records[0].clone();
    assert_eq!(record.version, 1);
    assert!(tea.log_id > head0);
    assert_eq!(record.source.as_ref().and_then(|s| s.to_seq), Some(4));

    // Tenant B sees nothing of it.
    assert!(store
        .get_memory(&b, &record.id)
        .await
        .expect("get")
        .is_none());
    assert!(store
        .get_memories(&b, std::slice::from_ref(&record.id))
        .await
        .expect("get many")
        .is_empty());
    assert!(store
        .memory_history(&b, &record.id)
        .await
        .expect("history")
        .is_empty());
    let err = store
        .write_memories(
            &b,
            vec![write(MemoryOp::Delete {
                id: record.id.clone(),
                expected_version: None,
            })],
        )
        .await
        .expect_err("cross-tenant delete");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    // Update with a stale version is refused and changes nothing.
    let stale = store
        .write_memories(
            &a,
            vec![write(MemoryOp::Update {
                id: record.id.clone(),
                expected_version: Some(7),
                content: Some("Ada likes coffee".into()),
                metadata: None,
                expires_at: None,
                source: None,
                embedding: None,
            })],
        )
        .await
        .expect_err("stale");
    assert!(matches!(stale, StoreError::Conflict(_)), "{stale}");
    let updated = store
        .write_memories(
            &a,
            vec![write(MemoryOp::Update {
                id: record.id.clone(),
                expected_version: Some(1),
                content: Some("Ada now prefers coffee".into()),
                metadata: None,
                expires_at: None,
                source: None,
                embedding: Some(Embedding {
                    model: "m1".into(),
                    vector: vec![0.6, 0.8],
                }),
            })],
        )
        .await
        .expect("update");
    assert_eq!(updated.records[0].version, 2);
    assert!(updated.log_id > tea.log_id);
    let history = store.memory_history(&a, &record.id).await.expect("history");
    let contents: Vec<&str> = history.iter().map(|v| v.content.as_str()).collect();
    assert_eq!(contents, ["Ada likes tea", "Ada now prefers coffee"]);
    assert_eq!(history[1].operation, "update");
    assert_eq!(history[0].principal, "key:test");

    // A keyed create updates the keyed record instead of adding another.
    let first = store
        .write_memories(&a, vec![write(create("agents/x", "summary 1", Some("s1")))])
        .await
        .expect("keyed");
    let second = store
        .write_memories(&a, vec![write(create("agents/x", "summary 2", Some("s1")))])
        .await
        .expect("keyed again");
    assert_eq!(first.records[0].id, second.records[0].id);
    assert_eq!(second.records[0].version, 2);
    assert_eq!(second.records[0].content, "summary 2");

    // A batch is atomic: a failing write undoes the ones before it.
    let before = store
        .list_memories(
            &a,
            &MemoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let failed = store
        .write_memories(
            &a,
            vec![
                write(create("agents/x", "lost", None)),
                write(MemoryOp::Delete {
                    id: MemoryId::generate(),
                    expected_version: None,
                }),
            ],
        )
        .await;
    assert!(failed.is_err());
    let after = store
        .list_memories(
            &a,
            &MemoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(before.len(), after.len());

    // Listing filters by namespace and kind, pages by id, hides expired.
    let expired = MemoryOp::Create {
        id: MemoryId::generate(),
        namespace: "users/ada".into(),
        kind: "preference".into(),
        key: None,
        content: "short-lived".into(),
        metadata: json!({}),
        source: None,
        expires_at: Some(Utc::now() - Duration::seconds(5)),
        embedding: None,
    };
    store
        .write_memories(
            &a,
            vec![
                write(expired),
                write(create("users/ada", "Ada is in Paris", None)),
            ],
        )
        .await
        .expect("more");
    let users = store
        .list_memories(
            &a,
            &MemoryQuery {
                namespace: Some("users/ada".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].content, "Ada is in Paris");
    let with_expired = store
        .list_memories(
            &a,
            &MemoryQuery {
                namespace: Some("users/ada".into()),
                include_expired: true,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list users");
    assert_eq!(with_expired.len(), 2);
    let page1 = store
        .list_memories(
            &a,
            &MemoryQuery {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .expect("page 1");
    let page2 = store
        .list_memories(
            &a,
            &MemoryQuery {
                limit: 2,
                after: Some(page1[1].id.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("page 2");
    assert_eq!(page1.len(), 2);
    assert!(page2.iter().all(|r| r.id > page1[1].id));

    // The index feed: log entries in order, rows with their vectors.
    let log = store.search_log_after(head0, 1000).await.expect("log");
    assert!(log.windows(2).all(|w| w[0].id < w[1].id));
    assert!(log.iter().all(|e| e.kind == "memory" && e.tenant == a));
    let rows = store
        .memory_index_rows(&[record.id.to_string()])
        .await
        .expect("rows");
    assert_eq!(rows[0].text, "Ada now prefers coffee");
    assert_eq!(rows[0].scope, "agents/x");
    assert_eq!(
        rows[0].embedding.as_ref().map(|e| e.vector.clone()),
        Some(vec![0.6, 0.8])
    );

    // Backfill: records without an m1 vector, then vectors stored only for
    // the version they were computed from.
    let missing = store
        .unembedded(RowKind::Memory, "m1", 100)
        .await
        .expect("missing");
    assert!(missing.iter().all(|r| r.id != record.id.as_str()));
    assert!(!missing.is_empty());
    let stale_update = EmbeddingUpdate {
        tenant: a.clone(),
        id: missing[0].id.clone(),
        version: missing[0].version + 1,
        embedding: Embedding {
            model: "m1".into(),
            vector: vec![1.0],
        },
    };
    let fresh_update = EmbeddingUpdate {
        version: missing[0].version,
        ..stale_update.clone()
    };
    assert_eq!(
        store
            .set_embeddings(RowKind::Memory, vec![stale_update])
            .await
            .expect("stale"),
        0
    );
    let head1 = store.search_log_head().await.expect("head");
    assert_eq!(
        store
            .set_embeddings(RowKind::Memory, vec![fresh_update])
            .await
            .expect("fresh"),
        1
    );
    assert!(store.search_log_head().await.expect("head") > head1);
    // Another model's vectors do not count as this one's.
    let other = store
        .unembedded(RowKind::Memory, "m2", 100)
        .await
        .expect("m2");
    assert!(other.iter().any(|r| r.id == record.id.as_str()));

    // Delete keeps the history and leaves the log pointing at a gone row.
    store
        .write_memories(
            &a,
            vec![write(MemoryOp::Delete {
                id: record.id.clone(),
                expected_version: Some(2),
            })],
        )
        .await
        .expect("delete");
    assert!(store
        .get_memory(&a, &record.id)
        .await
        .expect("get")
        .is_none());
    let history = store.memory_history(&a, &record.id).await.expect("history");
    assert_eq!(history.last().map(|v| v.operation.as_str()), Some("delete"));
    assert!(store
        .memory_index_rows(&[record.id.to_string()])
        .await
        .expect("rows")
        .is_empty());
    let scanned = store.scan_memory_index_rows("", 1000).await.expect("scan");
    assert!(scanned.windows(2).all(|w| w[0].id < w[1].id));
    assert!(scanned.iter().all(|r| r.id != record.id.as_str()));
}

#[tokio::test]
async fn sqlite_records() {
    let dir = tempfile::tempdir().expect("dir");
    story(common::sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_records() {
    if let Some(store) = common::postgres().await {
        story(store).await;
    }
}
