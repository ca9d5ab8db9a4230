//! The full-text part: a tantivy index scored with BM25.
//!
//! Owns: the schema, the single `IndexWriter`, the reader and the full-text
//! watermark. Each `apply` is one tantivy commit whose payload is the log
//! position it brings the index to, so the watermark is exactly as durable as
//! the documents (tantivy swaps `meta.json` atomically). The reader is reloaded
//! before `apply` returns (read-your-writes).
//! Layout: `key` (raw, indexed, stored — for deletes and hits), `tenant` and
//! `scope` (raw, indexed; scope stored for hits) and `text`, indexed from
//! pre-tokenised, partition-prefixed terms (see `analyzer.rs`) with term
//! frequencies and norms, not stored: the caller hydrates text itself.
//! Must never: store document text, parse user text as query syntax, or run
//! a query that is not confined to one tenant's partitions.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query as TantivyQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{
    collector::TopDocs, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument,
    TantivyError, Term,
};

use crate::analyzer::{partition_prefix, Analyzer};
use crate::error::IndexError;
use crate::types::{Change, Hit};

/// Commit payloads look like `wm=42`; the prefix lets a future format coexist.
const PAYLOAD_PREFIX: &str = "wm=";

/// Batches at least this large are tokenised on several threads.
const PARALLEL_TOKENISE_MIN: usize = 2048;

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    tenant: Field,
    scope: Field,
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let key = b.add_text_field("key", STRING | STORED);
    let tenant = b.add_text_field("tenant", STRING);
    let scope = b.add_text_field("scope", STRING | STORED);
    // Positions are not needed (no phrase queries); frequencies and norms are
    // what BM25 uses.
    let text_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let text = b.add_text_field("text", text_options);
    (
        b.build(),
        Fields {
            key,
            tenant,
            scope,
            text,
        },
    )
}

pub(crate) struct TextPart {
    index: Index,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    reader: IndexReader,
    fields: Fields,
    analyzer: Analyzer,
    watermark: AtomicU64,
    apply_threads: usize,
}

fn map_open_error(dir: &Path, err: TantivyError) -> IndexError {
    match err {
        TantivyError::LockFailure(..) => IndexError::Locked(dir.to_path_buf()),
        other => IndexError::text(other),
    }
}

impl TextPart {
    pub(crate) fn open(
        dir: &Path,
        writer_threads: usize,
        writer_memory_bytes: usize,
        apply_threads: usize,
    ) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::io(format!("creating {}", dir.display()), e))?;
        let directory =
            MmapDirectory::open(dir).map_err(|e| IndexError::text(TantivyError::from(e)))?;
        let (expected, fields) = schema();
        let exists = Index::exists(&directory)
            .map_err(|e| IndexError::Corrupt(format!("full-text index: {e}")))?;
        let index = if exists {
            let index = Index::open(directory).map_err(|e| map_open_error(dir, e))?;
            if index.schema() != expected {
                return Err(IndexError::Corrupt(format!(
                    "full-text index at {} has another schema; remove it with SearchIndex::destroy and re-feed",
                    dir.display()
                )));
            }
            index
        } else {
            Index::create(directory, expected, tantivy::IndexSettings::default())
                .map_err(|e| map_open_error(dir, e))?
        };
        // Tantivy wants at least ~15 MB per thread; stay above it whatever was asked.
        let threads = writer_threads.max(1);
        let budget = writer_memory_bytes.max(threads * (16 << 20));
        let writer = index
            .writer_with_num_threads(threads, budget)
            .map_err(|e| map_open_error(dir, e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(IndexError::text)?;
        let payload = index.load_metas().map_err(IndexError::text)?.payload;
        let watermark = parse_payload(payload.as_deref())?;
        Ok(TextPart {
            index,
            writer: Mutex::new(writer),
            reader,
            fields,
            analyzer: Analyzer::english(),
            watermark: AtomicU64::new(watermark),
            apply_threads: apply_threads.max(1),
        })
    }

    pub(crate) fn watermark(&self) -> u64 {
        self.watermark.load(Ordering::Acquire)
    }

    pub(crate) fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Applies the batch as one commit carrying `watermark`; on failure nothing
    /// of the batch is visible or durable.
    pub(crate) fn apply(&self, changes: &[Change], watermark: u64) -> Result<(), IndexError> {
        let docs = self.build_docs(changes);
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = Self::write_batch(&mut writer, self.fields, changes, docs, watermark);
        if let Err(err) = result {
            // Drop whatever the failed batch left pending so the next commit
            // cannot publish half of it.
            if let Err(rollback) = writer.rollback() {
                tracing::error!(error = %rollback, "full-text rollback failed");
            }
            return Err(err);
        }
        drop(writer);
        self.watermark.store(watermark, Ordering::Release);
        self.reader.reload().map_err(IndexError::text)?;
        Ok(())
    }

    fn write_batch(
        writer: &mut IndexWriter<TantivyDocument>,
        fields: Fields,
        changes: &[Change],
        docs: Vec<Option<TantivyDocument>>,
        watermark: u64,
    ) -> Result<(), IndexError> {
        for (change, doc) in changes.iter().zip(docs) {
            // Delete-then-add is an upsert: tantivy applies a delete to every
            // document added before it, including earlier ones in this batch.
            writer.delete_term(Term::from_field_text(fields.key, change.key()));
            if let Some(doc) = doc {
                writer.add_document(doc).map_err(IndexError::text)?;
            }
        }
        let mut prepared = writer.prepare_commit().map_err(IndexError::text)?;
        prepared.set_payload(&format!("{PAYLOAD_PREFIX}{watermark}"));
        prepared.commit().map_err(IndexError::text)?;
        Ok(())
    }

    fn build_docs(&self, changes: &[Change]) -> Vec<Option<TantivyDocument>> {
        let fields = self.fields;
        let build = |chunk: &[Change]| {
            let mut analyzer = self.analyzer.clone();
            chunk
                .iter()
                .map(|change| match change {
                    Change::Upsert(doc) => Some(make_doc(fields, &mut analyzer, doc)),
                    Change::Delete { .. } => None,
                })
                .collect::<Vec<_>>()
        };
        if changes.len() < PARALLEL_TOKENISE_MIN || self.apply_threads < 2 {
            return build(changes);
        }
        let chunk_len = changes.len().div_ceil(self.apply_threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = changes
                .chunks(chunk_len)
                .map(|chunk| s.spawn(move || build(chunk)))
                .collect();
            let mut out = Vec::with_capacity(changes.len());
            for (handle, chunk) in handles.into_iter().zip(changes.chunks(chunk_len)) {
                match handle.join() {
                    Ok(docs) => out.extend(docs),
                    // A panicking tokeniser thread is a bug; redo its share
                    // here rather than lose documents.
                    Err(_) => out.extend(build(chunk)),
                }
            }
            out
        })
    }

    /// BM25 top-`limit` of `text` inside the tenant's `scopes`.
    pub(crate) fn search(
        &self,
        tenant: &str,
        scopes: &[String],
        text: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let terms = self.analyzer.clone().query_terms(text);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let mut prefixes: Vec<String> = scopes
            .iter()
            .map(|scope| partition_prefix(tenant, scope))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> =
            Vec::with_capacity(prefixes.len() * terms.len());
        for prefix in &prefixes {
            for term in &terms {
                let term = Term::from_field_text(self.fields.text, &format!("{prefix}{term}"));
                clauses.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                ));
            }
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit))
            .map_err(IndexError::text)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(IndexError::text)?;
            let key = stored_str(&doc, self.fields.key)?;
            let scope = stored_str(&doc, self.fields.scope)?;
            hits.push(Hit {
                key,
                score,
                text_rank: None,
                vector_rank: None,
                scope,
            });
        }
        // Equal scores are ordered by key so results do not depend on segment layout.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        for (i, hit) in hits.iter_mut().enumerate() {
            hit.text_rank = Some(rank(i));
        }
        Ok(hits)
    }

    /// Lets background merges finish; for a clean shutdown only.
    pub(crate) fn close(self) -> Result<(), IndexError> {
        let writer = self
            .writer
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        writer.wait_merging_threads().map_err(IndexError::text)?;
        drop(self.index);
        Ok(())
    }
}

pub(crate) fn rank(position: usize) -> u32 {
    u32::try_from(position + 1).unwrap_or(u32::MAX)
}

fn stored_str(doc: &TantivyDocument, field: Field) -> Result<String, IndexError> {
    doc.get_first(field)
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| IndexError::Corrupt("full-text document lacks a stored field".into()))
}

fn make_doc(fields: Fields, analyzer: &mut Analyzer, doc: &crate::types::Doc) -> TantivyDocument {
    let prefix = partition_prefix(&doc.tenant, &doc.scope);
    let tokens = analyzer
        .tokens(&doc.text)
        .into_iter()
        .enumerate()
        .map(|(position, token)| Token {
            offset_from: 0,
            offset_to: 0,
            position,
            text: format!("{prefix}{token}"),
            position_length: 1,
        })
        .collect();
    let mut out = TantivyDocument::default();
    out.add_text(fields.key, &doc.key);
    out.add_text(fields.tenant, &doc.tenant);
    out.add_text(fields.scope, &doc.scope);
    out.add_pre_tokenized_text(
        fields.text,
        PreTokenizedString {
            text: String::new(),
            tokens,
        },
    );
    out
}

fn parse_payload(payload: Option<&str>) -> Result<u64, IndexError> {
    match payload {
        None => Ok(0),
        Some(p) => p
            .strip_prefix(PAYLOAD_PREFIX)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                IndexError::Corrupt(format!("unreadable full-text commit payload {p:?}"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_roundtrip() {
        assert_eq!(parse_payload(None).ok(), Some(0));
        assert_eq!(parse_payload(Some("wm=42")).ok(), Some(42));
        assert!(parse_payload(Some("garbage")).is_err());
    }
}
