//! The memory service against real stores: writes are searchable when they
//! return, search never crosses tenants or namespaces, and the derived index
//! comes back consistent with the store after a crash, a lost index
//! directory, or a rebuild.

use chrono::{Duration, Utc};
use roster_core::{MemoryId, TenantId};
use roster_embed::{DynEmbedder, EmbedderConfig};
use roster_memory::{MemoryOptions, MemoryService, SearchMode, SearchRequest};
use roster_store::{DynStore, MemoryOp, MemoryWrite, RowKind};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

struct Db {
    url: String,
    dir: tempfile::TempDir,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("roster.db").display());
        Db { url, dir }
    }

    async fn postgres() -> Option<Db> {
        Self::on_server("ROSTER_TEST_DATABASE_URL").await
    }

    /// A fresh database on a server with pgvector, or `None` with a notice.
    async fn pgvector() -> Option<Db> {
        Self::on_server("ROSTER_TEST_PGVECTOR_URL").await
    }

    /// A fresh database on the PostgreSQL server `variable` names, or
    /// `None` with a notice when it is unset; in CI that is a failure.
    async fn on_server(variable: &str) -> Option<Db> {
        let Ok(url) = std::env::var(variable) else {
            assert!(std::env::var_os("CI").is_none(), "CI must set {variable}");
            eprintln!("notice: {variable} is not set; skipping a PostgreSQL test");
            return None;
        };
        let url = roster_store_sql::postgres::create_test_database(&url)
            .await
            .expect("test database");
        Some(Db {
            url,
            dir: tempfile::tempdir().expect("dir"),
        })
    }

    async fn store(&self) -> DynStore {
        roster_store_sql::open(&self.url).await.expect("store")
    }

    fn index_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("index")
    }
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::Db::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    )+};
}

on_both_backends!(
    writes_are_searchable_and_scoped,
    the_index_catches_up_after_a_crash,
    rebuild_matches_the_store,
);

async fn open(store: &DynStore, dir: &Path, embedder: Option<DynEmbedder>) -> Arc<MemoryService> {
    let service = MemoryService::open(MemoryOptions {
        store: store.clone(),
        index_dir: dir.to_path_buf(),
        embedder,
    })
    .await
    .expect("memory service");
    service.start();
    service
}

fn create(namespace: &str, content: &str) -> MemoryWrite {
    MemoryWrite {
        op: MemoryOp::Create {
            id: MemoryId::generate(),
            namespace: namespace.into(),
            kind: "fact".into(),
            key: None,
            content: content.into(),
            metadata: json!({}),
            source: None,
            expires_at: None,
            embedding: None,
        },
        principal: "key:test".into(),
        run_id: None,
    }
}

async fn write(
    service: &MemoryService,
    tenant: &TenantId,
    writes: Vec<MemoryWrite>,
) -> Vec<MemoryId> {
    let written = service
        .store()
        .write_memories(tenant, writes)
        .await
        .expect("write");
    service.wait_indexed(written.log_id).await;
    written.records.into_iter().map(|r| r.id).collect()
}

async fn find(
    service: &MemoryService,
    tenant: &TenantId,
    namespaces: &[&str],
    query: &str,
) -> Vec<String> {
    service
        .search(
            tenant,
            &SearchRequest {
                namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
                query: query.into(),
                limit: 10,
            },
        )
        .await
        .expect("search")
        .data
        .into_iter()
        .map(|h| h.record.content)
        .collect()
}

async fn tenants(store: &DynStore) -> (TenantId, TenantId) {
    let a = TenantId::generate();
    let b = TenantId::generate();
    store.ensure_tenant(&a, "A").await.expect("a");
    store.ensure_tenant(&b, "B").await.expect("b");
    (a, b)
}

async fn writes_are_searchable_and_scoped(db: Db) {
    let store = db.store().await;
    let (a, b) = tenants(&store).await;
    let service = open(&store, &db.index_dir(), None).await;
    write(
        &service,
        &a,
        vec![
            create("agents/helper", "Ada prefers green tea in the morning"),
            create("agents/other", "Ada's tea order is oolong"),
        ],
    )
    .await;
    write(
        &service,
        &b,
        vec![create("agents/helper", "Bob drinks tea")],
    )
    .await;

    // Found as soon as the write returned; only this tenant and namespace.
    let hits = find(&service, &a, &["agents/helper"], "what tea does Ada like?").await;
    assert_eq!(hits, ["Ada prefers green tea in the morning"]);
    let both = find(&service, &a, &["agents/helper", "agents/other"], "tea").await;
    assert_eq!(both.len(), 2);
    let b_hits = find(
        &service,
        &b,
        &["agents/helper", "agents/other"],
        "tea Ada oolong",
    )
    .await;
    assert_eq!(b_hits, ["Bob drinks tea"]);

    // Without an embedder the answer says it was full-text only.
    let results = service
        .search(
            &a,
            &SearchRequest {
                namespaces: vec!["agents/helper".into()],
                query: "tea".into(),
                limit: 5,
            },
        )
        .await
        .expect("search");
    assert_eq!(results.mode, SearchMode::FullText);
    assert!(results.notice.is_some());

    // Hostile query text is just words.
    assert!(
        find(&service, &a, &["agents/helper"], "\"(tea AND:* -) OR [")
            .await
            .len()
            <= 1
    );

    // Updated, deleted and expired records show their current state.
    let id = write(
        &service,
        &a,
        vec![create("agents/helper", "Ada lives in Paris")],
    )
    .await[0]
        .clone();
    let written = store
        .write_memories(
            &a,
            vec![MemoryWrite {
                op: MemoryOp::Update {
                    id: id.clone(),
                    expected_version: Some(1),
                    content: Some("Ada moved to Lyon".into()),
                    metadata: None,
                    expires_at: None,
                    source: None,
                    embedding: None,
                },
                principal: "key:test".into(),
                run_id: None,
            }],
        )
        .await
        .expect("update");
    service.wait_indexed(written.log_id).await;
    assert!(find(&service, &a, &["agents/helper"], "Paris")
        .await
        .is_empty());
    assert_eq!(
        find(&service, &a, &["agents/helper"], "Lyon").await,
        ["Ada moved to Lyon"]
    );
    let written = store
        .write_memories(
            &a,
            vec![MemoryWrite {
                op: MemoryOp::Delete {
                    id,
                    expected_version: None,
                },
                principal: "key:test".into(),
                run_id: None,
            }],
        )
        .await
        .expect("delete");
    service.wait_indexed(written.log_id).await;
    assert!(find(&service, &a, &["agents/helper"], "Lyon")
        .await
        .is_empty());
    let mut expiring = create("agents/helper", "A parking permit valid until yesterday");
    if let MemoryOp::Create { expires_at, .. } = &mut expiring.op {
        *expires_at = Some(Utc::now() - Duration::hours(1));
    }
    write(&service, &a, vec![expiring]).await;
    assert!(find(&service, &a, &["agents/helper"], "parking permit")
        .await
        .is_empty());

    // Bad requests are refused, not searched.
    for bad in [
        SearchRequest {
            namespaces: vec![],
            query: "x".into(),
            limit: 1,
        },
        SearchRequest {
            namespaces: vec!["../x".into()],
            query: "x".into(),
            limit: 1,
        },
        SearchRequest {
            namespaces: vec!["a".into()],
            query: "  ".into(),
            limit: 1,
        },
    ] {
        assert!(service.search(&a, &bad).await.is_err());
    }
    service.shutdown().await;
}

async fn the_index_catches_up_after_a_crash(db: Db) {
    let store = db.store().await;
    let (a, _) = tenants(&store).await;
    let service = open(&store, &db.index_dir(), None).await;
    let before: Vec<MemoryWrite> = (0..40)
        .map(|i| create("agents/helper", &format!("fact number {i} about zebras")))
        .collect();
    write(&service, &a, before).await;
    // A crash: no shutdown, no snapshot. Then records land while no index
    // runs (the store committed; the process died before indexing).
    service.halt().await;
    drop(service);
    let while_down: Vec<MemoryWrite> = (40..60)
        .map(|i| create("agents/helper", &format!("fact number {i} about zebras")))
        .collect();
    store.write_memories(&a, while_down).await.expect("write");
    let service = open(&store, &db.index_dir(), None).await;
    let status = service.status().await.expect("status");
    assert_eq!(
        status.applied, status.head,
        "open catches up before serving"
    );
    let hits = service
        .search(
            &a,
            &SearchRequest {
                namespaces: vec!["agents/helper".into()],
                query: "zebras".into(),
                limit: 100,
            },
        )
        .await
        .expect("search");
    assert_eq!(hits.data.len(), 60);
    service.shutdown().await;

    // The index directory lost entirely: rebuilt from the log at open.
    std::fs::remove_dir_all(db.index_dir()).expect("remove index");
    let service = open(&store, &db.index_dir(), None).await;
    assert_eq!(
        find(&service, &a, &["agents/helper"], "fact number 59").await[0],
        "fact number 59 about zebras"
    );
    service.shutdown().await;
}

async fn rebuild_matches_the_store(db: Db) {
    let store = db.store().await;
    let (a, b) = tenants(&store).await;
    let service = open(&store, &db.index_dir(), None).await;
    write(
        &service,
        &a,
        vec![create("users/ada", "Ada is allergic to peanuts")],
    )
    .await;
    write(
        &service,
        &b,
        vec![create("users/ada", "Another Ada likes peanuts")],
    )
    .await;
    let records = service.rebuild().await.expect("rebuild");
    assert_eq!(records, 2);
    let status = service.status().await.expect("status");
    assert_eq!(status.applied, status.head);
    assert_eq!(status.documents, 2);
    assert_eq!(
        find(&service, &a, &["users/ada"], "peanuts").await,
        ["Ada is allergic to peanuts"]
    );
    // Writes after a rebuild still arrive.
    write(&service, &a, vec![create("users/ada", "Ada has a cat")]).await;
    assert_eq!(
        find(&service, &a, &["users/ada"], "cat").await,
        ["Ada has a cat"]
    );
    service.shutdown().await;
}

/// The OpenAI-compatible embedder against the fake server: search becomes
/// hybrid, and records written without a vector get one from the backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_makes_search_hybrid_and_backfills_vectors() {
    embedder_story(Db::sqlite().await, "local").await;
}

/// The same with pgvector: the vectors are searched in the database and
/// the local index holds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pgvector_the_database_searches_the_vectors() {
    if let Some(db) = Db::pgvector().await {
        embedder_story(db, "pgvector").await;
    }
}

async fn embedder_story(db: Db, vector_search: &str) {
    let store = db.store().await;
    let (a, _) = tenants(&store).await;
    let fake = roster_testkit::FakeModelServer::start().await;
    let config: EmbedderConfig = serde_json::from_value(json!({
        "kind": "openai",
        "model": "text-embedding-3-small",
        "base_url": fake.openai_base_url(),
        "api_key": "sk-test",
        "dimensions": 64,
    }))
    .expect("config");
    let embedder = roster_embed::build(&config, &|_| None)
        .await
        .expect("embedder");
    // Written before any embedder existed.
    store
        .write_memories(&a, vec![create("agents/helper", "The office is in Berlin")])
        .await
        .expect("write");
    let service = open(&store, &db.index_dir(), Some(embedder)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = service.status().await.expect("status");
        let waiting = store
            .unembedded(RowKind::Memory, service.embedder_id().expect("embedder"), 1)
            .await
            .expect("unembedded");
        if waiting.is_empty() && status.applied == status.head {
            let searched_by = status.vector_search.unwrap_or_default();
            assert!(searched_by.starts_with(vector_search), "{searched_by}");
            let local = if vector_search == "local" { 1 } else { 0 };
            assert_eq!(status.vectors, local, "vectors in the local index");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backfill did not finish: {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let results = service
        .search(
            &a,
            &SearchRequest {
                namespaces: vec!["agents/helper".into()],
                query: "where is the office".into(),
                limit: 5,
            },
        )
        .await
        .expect("search");
    assert_eq!(results.mode, SearchMode::Hybrid);
    assert_eq!(results.data[0].record.content, "The office is in Berlin");
    service.shutdown().await;
}
