//! Search quality on a corpus the test builds: company-handbook facts, and
//! questions about them worded the way people ask — often with none of the
//! fact's words. Hybrid search with the real all-MiniLM-L6-v2 must put the
//! right fact first for nearly all of them, and must do better than
//! full-text alone, which only finds shared words.
//!
//! Needs the model directory in `ROSTER_TEST_MINILM_DIR` (see `.ci/run`);
//! skipped with a notice without it, except under CI.

use roster_core::{MemoryId, TenantId};
use roster_embed::EmbedderConfig;
use roster_memory::{MemoryOptions, MemoryService, SearchMode, SearchRequest};
use roster_store::{DynStore, MemoryOp, MemoryWrite};
use serde_json::json;
use std::sync::Arc;

const CORPUS: &[&str] = &[
    "Employees receive 25 days of paid annual leave per calendar year.",
    "Parents are entitled to 16 weeks of paid parental leave after a birth or adoption.",
    "Expense reports must be submitted within 30 days of the purchase.",
    "Train travel is reimbursed in second class; first class needs a manager's approval.",
    "The office Wi-Fi password is changed on the first Monday of every month.",
    "Laptops are replaced every three years by the IT department.",
    "The cafeteria serves lunch from 11:30 to 14:00 on weekdays.",
    "Remote work is allowed up to three days a week with the team lead's agreement.",
    "Security badges must be worn visibly at all times inside the building.",
    "The fire assembly point is the car park behind building B.",
    "Quarterly revenue reports are published on the intranet two weeks after the quarter ends.",
    "New suppliers must pass a compliance check before the first order.",
    "Customer complaints must be answered within two business days.",
    "The printer on the third floor supports double-sided colour printing.",
    "Sick leave longer than three days requires a doctor's note.",
    "Bicycles can be parked in the secure garage in the basement.",
    "Performance reviews take place every year in November.",
    "Overtime is compensated with time off, not with extra pay.",
    "Visitors must be registered at the reception desk on arrival.",
    "The company pension plan matches contributions up to 5% of salary.",
];

/// (question, index of the fact that answers it).
const QUESTIONS: &[(&str, usize)] = &[
    ("How many vacation days do I get each year?", 0),
    ("How long can I stay home after my baby is born?", 1),
    ("What is the deadline for claiming back money I spent?", 2),
    (
        "Can I book a first-class rail ticket for a business trip?",
        3,
    ),
    ("When does the wireless network key change?", 4),
    ("How often do we get new computers?", 5),
    ("When can I eat in the canteen?", 6),
    ("Can I work from home?", 7),
    ("Where do we gather if there is a fire?", 9),
    ("How quickly do we need to respond to unhappy clients?", 12),
    ("Do I need a medical certificate when I am ill?", 14),
    ("Where can I leave my bike?", 15),
    ("When are annual appraisals held?", 16),
    ("Am I paid for working extra hours?", 17),
    ("Does the employer contribute to my retirement savings?", 19),
];

fn model_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("ROSTER_TEST_MINILM_DIR") {
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ if std::env::var_os("CI").is_some() => {
            panic!("ROSTER_TEST_MINILM_DIR is not set, and CI is (see .ci/run)")
        }
        _ => {
            eprintln!(
                "notice: ROSTER_TEST_MINILM_DIR is not set; skipping the search quality test"
            );
            None
        }
    }
}

async fn service(
    store: &DynStore,
    dir: &std::path::Path,
    path: Option<std::path::PathBuf>,
) -> Arc<MemoryService> {
    let embedder = match path {
        Some(path) => Some(
            roster_embed::build(
                &EmbedderConfig::Local {
                    path,
                    max_batch: None,
                    threads: None,
                },
                &|_| None,
            )
            .await
            .expect("embedder"),
        ),
        None => None,
    };
    let service = MemoryService::open(MemoryOptions {
        store: store.clone(),
        index_dir: dir.to_path_buf(),
        embedder,
    })
    .await
    .expect("service");
    service.start();
    service
}

/// How many questions get their fact first.
async fn first_hits(
    service: &MemoryService,
    tenant: &TenantId,
    ids: &[MemoryId],
) -> (usize, SearchMode) {
    let mut hits = 0;
    let mut mode = SearchMode::FullText;
    for (question, expected) in QUESTIONS {
        let results = service
            .search(
                tenant,
                &SearchRequest {
                    namespaces: vec!["handbook".into()],
                    query: (*question).into(),
                    limit: 3,
                },
            )
            .await
            .expect("search");
        mode = results.mode;
        if results.data.first().map(|h| &h.record.id) == Some(&ids[*expected]) {
            hits += 1;
        } else {
            eprintln!(
                "miss ({mode:?}): {question} -> {:?}",
                results.data.first().map(|h| h.record.content.clone())
            );
        }
    }
    (hits, mode)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_search_answers_questions_worded_differently_from_the_facts() {
    let Some(model) = model_dir() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .expect("store");
    quality(store, &dir, model, "local").await;
}

/// The same corpus and questions with the vectors searched by pgvector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pgvector_hybrid_search_answers_as_well() {
    let Some(model) = model_dir() else { return };
    let Ok(server) = std::env::var("ROSTER_TEST_PGVECTOR_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set ROSTER_TEST_PGVECTOR_URL"
        );
        eprintln!("notice: ROSTER_TEST_PGVECTOR_URL is not set; skipping a pgvector test");
        return;
    };
    let url = roster_store_sql::postgres::create_test_database(&server)
        .await
        .expect("database");
    let store = roster_store_sql::open(&url).await.expect("store");
    let dir = tempfile::tempdir().expect("dir");
    quality(store, &dir, model, "pgvector").await;
}

async fn quality(
    store: DynStore,
    dir: &tempfile::TempDir,
    model: std::path::PathBuf,
    vector_search: &str,
) {
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "T").await.expect("tenant");

    let hybrid = service(&store, &dir.path().join("hybrid"), Some(model)).await;
    let status = hybrid.status().await.expect("status");
    let searched_by = status.vector_search.unwrap_or_default();
    assert!(searched_by.starts_with(vector_search), "{searched_by}");
    let mut writes = Vec::new();
    for fact in CORPUS {
        writes.push(MemoryWrite {
            op: MemoryOp::Create {
                id: MemoryId::generate(),
                namespace: "handbook".into(),
                kind: "fact".into(),
                key: None,
                content: (*fact).into(),
                metadata: json!({}),
                source: None,
                expires_at: None,
                embedding: hybrid.embed_one(fact).await,
            },
            principal: "key:test".into(),
            run_id: None,
        });
    }
    let written = store.write_memories(&tenant, writes).await.expect("write");
    hybrid.wait_indexed(written.log_id).await;
    let ids: Vec<MemoryId> = written.records.iter().map(|r| r.id.clone()).collect();

    let (hybrid_hits, mode) = first_hits(&hybrid, &tenant, &ids).await;
    assert_eq!(mode, SearchMode::Hybrid);
    hybrid.shutdown().await;

    let text_only = service(&store, &dir.path().join("text"), None).await;
    let (text_hits, mode) = first_hits(&text_only, &tenant, &ids).await;
    assert_eq!(mode, SearchMode::FullText);
    text_only.shutdown().await;

    eprintln!(
        "search quality ({vector_search} vectors): hybrid {hybrid_hits}/{n}, full-text {text_hits}/{n} questions answered first",
        n = QUESTIONS.len()
    );
    assert!(
        hybrid_hits * 10 >= QUESTIONS.len() * 8,
        "hybrid found only {hybrid_hits} of {}",
        QUESTIONS.len()
    );
    assert!(
        hybrid_hits > text_hits,
        "hybrid {hybrid_hits} vs full-text {text_hits}"
    );
}
