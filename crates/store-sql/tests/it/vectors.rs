//! In-database vector search: pgvector where the server has it, a clear
//! "none" where it does not.

use crate::common;

use roster_core::{MemoryId, TenantId};
use roster_store::{
    DynStore, Embedding, EmbeddingUpdate, MemoryOp, MemoryWrite, NearestQuery, NewChunk,
    NewDocumentVersion, RowKind,
};
use serde_json::json;

const MODEL: &str = "test-embedder";
const DIMS: usize = 8;

/// A unit vector pointing mostly along axis `axis`, tilted by `tilt`.
fn vector(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIMS];
    v[axis % DIMS] = 1.0;
    v[(axis + 1) % DIMS] = tilt;
    v
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn create(namespace: &str, content: &str, embedding: Option<Embedding>) -> MemoryWrite {
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
            embedding,
        },
        principal: "key:test".into(),
        run_id: None,
    }
}

fn embedding(model: &str, vector: Vec<f32>) -> Option<Embedding> {
    Some(Embedding {
        model: model.into(),
        vector,
    })
}

async fn nearest(
    store: &DynStore,
    kind: RowKind,
    tenant: &TenantId,
    scopes: &[String],
    query: &[f32],
    limit: usize,
) -> Vec<(String, f32)> {
    store
        .nearest(&NearestQuery {
            kind,
            tenant,
            scopes,
            model: MODEL,
            vector: query,
            limit,
        })
        .await
        .expect("nearest")
}

#[tokio::test]
async fn pgvector_finds_nearest_records_within_tenant_scope_and_model() {
    let Some(url) = common::pgvector_url().await else {
        return;
    };
    let store = roster_store_sql::open(&url).await.expect("open");
    let support = store.native_vectors().expect("pgvector is detected");
    assert!(support.starts_with("pgvector "), "{support}");
    store
        .prepare_native_vectors(MODEL, DIMS)
        .await
        .expect("prepare");
    // Preparing twice (a second node, a restart) is harmless.
    store
        .prepare_native_vectors(MODEL, DIMS)
        .await
        .expect("prepare again");

    let a = TenantId::generate();
    let b = TenantId::generate();
    store.ensure_tenant(&a, "A").await.expect("tenant");
    store.ensure_tenant(&b, "B").await.expect("tenant");
    let mut writes = Vec::new();
    for i in 0..40 {
        let tilt = i as f32 / 40.0;
        writes.push(create(
            "ns/one",
            &format!("one {i}"),
            embedding(MODEL, vector(i % 4, tilt)),
        ));
    }
    // Same direction, but another namespace, tenant or embedder: never found.
    writes.push(create("ns/two", "two", embedding(MODEL, vector(0, 0.0))));
    writes.push(create(
        "ns/one",
        "other model",
        embedding("other", vector(0, 0.0)),
    ));
    writes.push(create("ns/one", "no vector", None));
    let written = store.write_memories(&a, writes).await.expect("write");
    store
        .write_memories(
            &b,
            vec![create("ns/one", "b", embedding(MODEL, vector(0, 0.0)))],
        )
        .await
        .expect("write b");

    let query = vector(0, 0.05);
    let scopes = vec!["ns/one".to_owned()];
    let hits = nearest(&store, RowKind::Memory, &a, &scopes, &query, 10).await;
    assert_eq!(hits.len(), 10);
    let by_id: std::collections::HashMap<String, (&str, Vec<f32>)> = written
        .records
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 40)
        .map(|(i, r)| {
            (
                r.id.to_string(),
                (r.content.as_str(), vector(i % 4, i as f32 / 40.0)),
            )
        })
        .collect();
    // Exactly the ten most similar of the namespace's 40, in order, with
    // the similarity Rust computes.
    let mut expected: Vec<(String, f32)> = by_id
        .iter()
        .map(|(id, (_, v))| (id.clone(), cosine(&query, v)))
        .collect();
    expected.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    for ((got, score), (want, want_score)) in hits.iter().zip(&expected) {
        assert!(
            (score - want_score).abs() < 1e-5,
            "{got}: {score} vs {want_score}"
        );
        assert!(by_id.contains_key(got), "{got} is not a record of ns/one");
        let _ = want;
    }
    let got: std::collections::HashSet<&String> = hits.iter().map(|h| &h.0).collect();
    let want: std::collections::HashSet<&String> = expected[..10].iter().map(|h| &h.0).collect();
    assert_eq!(got, want);

    // Tenant B sees only its own record; an unknown namespace sees nothing.
    let only_b = nearest(&store, RowKind::Memory, &b, &scopes, &query, 10).await;
    assert_eq!(only_b.len(), 1);
    assert!(!by_id.contains_key(&only_b[0].0));
    let none = nearest(&store, RowKind::Memory, &a, &["ns/zzz".into()], &query, 10).await;
    assert!(none.is_empty());

    // The backfill's path: a record stored without a vector gets one, and
    // the generated column follows; a new version's text drops it.
    let plain = &written.records[42];
    assert_eq!(plain.content, "no vector");
    let stored = store
        .set_embeddings(
            RowKind::Memory,
            vec![EmbeddingUpdate {
                tenant: a.clone(),
                id: plain.id.to_string(),
                version: plain.version,
                embedding: Embedding {
                    model: MODEL.into(),
                    vector: vector(7, 0.0),
                },
            }],
        )
        .await
        .expect("set embeddings");
    assert_eq!(stored, 1);
    let top = nearest(&store, RowKind::Memory, &a, &scopes, &vector(7, 0.0), 1).await;
    assert_eq!(top[0].0, plain.id.to_string());
    assert!((top[0].1 - 1.0).abs() < 1e-6);
}

#[tokio::test]
async fn pgvector_searches_chunks_by_source() {
    let Some(url) = common::pgvector_url().await else {
        return;
    };
    let store = roster_store_sql::open(&url).await.expect("open");
    store
        .prepare_native_vectors(MODEL, DIMS)
        .await
        .expect("prepare");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "T").await.expect("tenant");
    let handbook = store
        .create_source(&tenant, "handbook", "")
        .await
        .expect("source");
    let wiki = store
        .create_source(&tenant, "wiki", "")
        .await
        .expect("source");
    for (source, axis) in [(&handbook, 0), (&wiki, 0)] {
        let chunks = (0..3)
            .map(|i| NewChunk {
                text: format!("chunk {i}"),
                location: json!({"line_start": i + 1}),
                citation: format!("line {}", i + 1),
                embedding: embedding(MODEL, vector(axis + i, 0.0)),
            })
            .collect();
        store
            .put_document(
                &tenant,
                NewDocumentVersion {
                    source_id: source.id.clone(),
                    path: "a.md".into(),
                    kind: "markdown".into(),
                    content_hash: format!("{}", source.id),
                    bytes: 10,
                    chars: 10,
                    chunks,
                },
            )
            .await
            .expect("put");
    }
    let hits = nearest(
        &store,
        RowKind::Chunk,
        &tenant,
        &[handbook.id.to_string()],
        &vector(1, 0.0),
        5,
    )
    .await;
    assert_eq!(hits.len(), 3, "only the handbook's chunks: {hits:?}");
    let (document, ordinal) = roster_store::split_chunk_id(&hits[0].0).expect("chunk id");
    assert_eq!(ordinal, 1);
    let passages = store
        .get_passages(
            &tenant,
            &[(
                roster_core::DocumentId::from_stored(document.to_owned()),
                ordinal,
            )],
        )
        .await
        .expect("passages");
    assert_eq!(passages[0].source, "handbook");
}

#[tokio::test]
async fn vectors_stored_before_pgvector_are_searchable_once_it_arrives() {
    let Some(url) = common::pgvector_url().await else {
        return;
    };
    let store = roster_store_sql::open(&url).await.expect("open");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "T").await.expect("tenant");
    // As if the server had no pgvector: the extension and its column go.
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");
    sqlx::query("DROP EXTENSION vector CASCADE")
        .execute(&pool)
        .await
        .expect("drop extension");
    drop(store);
    let plain = roster_store_sql::open(&url).await.expect("reopen");
    let written = plain
        .write_memories(
            &tenant,
            vec![
                create("ns", "near", embedding(MODEL, vector(2, 0.0))),
                create("ns", "far", embedding(MODEL, vector(5, 0.0))),
            ],
        )
        .await
        .expect("write");
    // Reopening installs pgvector again and fills the column from the bytes.
    let with_vectors = roster_store_sql::open(&url).await.expect("reopen");
    assert!(with_vectors.native_vectors().is_some());
    with_vectors
        .prepare_native_vectors(MODEL, DIMS)
        .await
        .expect("prepare");
    let hits = nearest(
        &with_vectors,
        RowKind::Memory,
        &tenant,
        &["ns".into()],
        &vector(2, 0.1),
        1,
    )
    .await;
    assert_eq!(hits[0].0, written.records[0].id.to_string());
    pool.close().await;
}

#[tokio::test]
async fn a_server_without_pgvector_says_so() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let store = roster_store_sql::open(&url).await.expect("open");
    let available: bool = {
        let pool = sqlx::PgPool::connect(&url).await.expect("pool");
        let found = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')",
        )
        .fetch_one(&pool)
        .await
        .expect("query");
        pool.close().await;
        found
    };
    if available {
        eprintln!("notice: this PostgreSQL has pgvector; the no-pgvector path is not exercised");
        return;
    }
    assert!(store.native_vectors().is_none());
    let tenant = TenantId::generate();
    let err = store
        .nearest(&NearestQuery {
            kind: RowKind::Memory,
            tenant: &tenant,
            scopes: &["ns".into()],
            model: MODEL,
            vector: &vector(0, 0.0),
            limit: 3,
        })
        .await
        .expect_err("no vector search");
    assert!(err.to_string().contains("pgvector"), "{err}");
}

#[tokio::test]
async fn sqlite_has_no_vector_search_of_its_own() {
    let dir = tempfile::tempdir().expect("dir");
    let store = common::sqlite(&dir).await;
    assert!(store.native_vectors().is_none());
    assert!(store.prepare_native_vectors(MODEL, DIMS).await.is_err());
}
