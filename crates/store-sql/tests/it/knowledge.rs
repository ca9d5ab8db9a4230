//! Knowledge sources, documents and chunks: one story against both backends.

use crate::common;

use roster_core::knowledge::DocumentError;
use roster_core::TenantId;
use roster_store::{
    DocumentPut, DynStore, Embedding, EmbeddingUpdate, NewChunk, NewDocumentVersion, RowKind,
    StoreError,
};
use serde_json::json;

fn version(
    source: &roster_core::SourceId,
    path: &str,
    hash: &str,
    texts: &[&str],
) -> NewDocumentVersion {
    NewDocumentVersion {
        source_id: source.clone(),
        path: path.into(),
        kind: "markdown".into(),
        content_hash: hash.into(),
        bytes: 100,
        chars: 90,
        chunks: texts
            .iter()
            .enumerate()
            .map(|(i, t)| NewChunk {
                text: (*t).into(),
                location: json!({"line_start": i + 1, "line_end": i + 1}),
                citation: format!("line {}", i + 1),
                embedding: None,
            })
            .collect(),
    }
}

async fn story(store: DynStore) {
    let a = TenantId::generate();
    let b = TenantId::generate();
    store.ensure_tenant(&a, "A").await.expect("a");
    store.ensure_tenant(&b, "B").await.expect("b");

    let handbook = store
        .create_source(&a, "handbook", "HR policies")
        .await
        .expect("source");
    let dup = store
        .create_source(&a, "handbook", "")
        .await
        .expect_err("dup");
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");
    // Another tenant may use the same name.
    store
        .create_source(&b, "handbook", "")
        .await
        .expect("b's own");
    assert!(store
        .get_source(&b, "handbook")
        .await
        .expect("get")
        .is_some_and(|s| s.id != handbook.id));

    // First version: three chunks.
    let head0 = store.search_log_head().await.expect("head");
    let put = store
        .put_document(
            &a,
            version(&handbook.id, "leave.md", "h1", &["one", "two", "three"]),
        )
        .await
        .expect("put");
    let DocumentPut::Stored { document, log_id } = put else {
        panic!("expected a stored version");
    };
    assert!(log_id > head0);
    assert_eq!((document.version, document.chunks), (1, 3));
    // Same bytes again: unchanged, nothing logged.
    let again = store
        .put_document(&a, version(&handbook.id, "leave.md", "h1", &["x"]))
        .await
        .expect("again");
    assert!(matches!(again, DocumentPut::Unchanged(_)));
    assert_eq!(store.search_log_head().await.expect("head"), log_id);

    // Chunks hydrate with citations; another tenant's key finds nothing.
    let keys = [(document.id.clone(), 0), (document.id.clone(), 2)];
    let passages = store.get_passages(&a, &keys).await.expect("passages");
    assert_eq!(passages.len(), 2);
    let first = passages.iter().find(|p| p.ordinal == 0).expect("first");
    assert_eq!(first.text, "one");
    assert_eq!(first.citation, "handbook:leave.md (line 1)");
    assert_eq!(first.location["line_start"], 1);
    assert!(store.get_passages(&b, &keys).await.expect("b").is_empty());

    // The index feed sees the document with its chunks and the max count.
    let rows = store
        .document_index_rows(&[document.id.to_string()])
        .await
        .expect("rows");
    assert_eq!(rows[0].rows.len(), 3);
    assert_eq!(rows[0].max_chunks, 3);
    assert_eq!(rows[0].rows[1].id, format!("{}:1", document.id));
    assert_eq!(rows[0].rows[1].scope, handbook.id.as_str());

    // A new version with fewer chunks replaces them whole.
    let put = store
        .put_document(&a, version(&handbook.id, "leave.md", "h2", &["uno"]))
        .await
        .expect("v2");
    let DocumentPut::Stored { document, .. } = put else {
        panic!("expected a stored version");
    };
    assert_eq!((document.version, document.chunks), (2, 1));
    let rows = store
        .document_index_rows(&[document.id.to_string()])
        .await
        .expect("rows");
    assert_eq!(rows[0].rows.len(), 1);
    assert_eq!(
        rows[0].max_chunks, 3,
        "the index must still remove ordinals 1 and 2"
    );
    assert_eq!(
        store.get_passages(&a, &keys).await.expect("passages").len(),
        1
    );

    // A failed ingest keeps the live version and records why.
    let failed = store
        .fail_document(
            &a,
            &handbook.id,
            "leave.md",
            DocumentError {
                code: "garbled_text".into(),
                message: "leave.md is not text".into(),
            },
        )
        .await
        .expect("fail");
    assert_eq!(failed.version, 2);
    assert_eq!(
        failed.error.as_ref().map(|e| e.code.as_str()),
        Some("garbled_text")
    );
    let new_fail = store
        .fail_document(
            &a,
            &handbook.id,
            "scan.pdf",
            DocumentError {
                code: "no_text".into(),
                message: "no text".into(),
            },
        )
        .await
        .expect("fail new");
    assert_eq!((new_fail.version, new_fail.chunks), (0, 0));

    // Embedding backfill of chunks.
    let missing = store
        .unembedded(RowKind::Chunk, "m", 10)
        .await
        .expect("missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].text, "uno");
    let stored = store
        .set_embeddings(
            RowKind::Chunk,
            vec![EmbeddingUpdate {
                tenant: a.clone(),
                id: missing[0].id.clone(),
                version: missing[0].version,
                embedding: Embedding {
                    model: "m".into(),
                    vector: vec![1.0, 0.0],
                },
            }],
        )
        .await
        .expect("set");
    assert_eq!(stored, 1);
    assert!(store
        .unembedded(RowKind::Chunk, "m", 10)
        .await
        .expect("none")
        .is_empty());
    let rows = store
        .document_index_rows(&[document.id.to_string()])
        .await
        .expect("rows");
    assert_eq!(
        rows[0].rows[0].embedding.as_ref().map(|e| e.model.as_str()),
        Some("m")
    );

    // Listing, paging by path, counts per source.
    store
        .put_document(&a, version(&handbook.id, "travel.md", "t1", &["a", "b"]))
        .await
        .expect("travel");
    let docs = store
        .list_documents(&a, &handbook.id, "", 10)
        .await
        .expect("list");
    let paths: Vec<&str> = docs.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["leave.md", "scan.pdf", "travel.md"]);
    let after = store
        .list_documents(&a, &handbook.id, "leave.md", 10)
        .await
        .expect("after");
    assert_eq!(after.len(), 2);
    let listed = store
        .get_source(&a, "handbook")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((listed.documents, listed.chunks), (3, 3));
    assert!(store
        .list_documents(&b, &handbook.id, "", 10)
        .await
        .expect("b list")
        .is_empty());

    // Deleting a document, then the whole source, logs the removals.
    let head = store.search_log_head().await.expect("head");
    assert!(store
        .delete_document(&a, &handbook.id, "travel.md")
        .await
        .expect("delete")
        .is_some_and(|id| id > head));
    assert!(store
        .delete_document(&a, &handbook.id, "travel.md")
        .await
        .expect("again")
        .is_none());
    let err = store
        .delete_source(&b, &handbook.id)
        .await
        .expect_err("cross-tenant");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    store
        .delete_source(&a, &handbook.id)
        .await
        .expect("delete source");
    assert!(store
        .get_source(&a, "handbook")
        .await
        .expect("get")
        .is_none());
    let entries = store.search_log_after(head, 100).await.expect("log");
    assert!(entries.iter().all(|e| e.kind == "document"));
    assert!(entries
        .iter()
        .any(|e| e.reference == format!("{}:3", document.id)));
    assert!(store
        .document_index_rows(&[document.id.to_string()])
        .await
        .expect("rows")
        .is_empty());
    let err = store
        .put_document(&a, version(&handbook.id, "x.md", "x", &["x"]))
        .await
        .expect_err("deleted source");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn sqlite_knowledge() {
    let dir = tempfile::tempdir().expect("dir");
    story(common::sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_knowledge() {
    if let Some(store) = common::postgres().await {
        story(store).await;
    }
}
