//! The embedding backfill: records and document chunks written without a
//! vector from the current embedder (it was down, the write came from elsewhere, or the
//! embedder changed) get one. Vectors are stored only for the version they
//! were computed from, and each stored vector goes through the search log
//! like any change, so the index picks it up.

use crate::MemoryService;
use roster_store::{Embedding, EmbeddingUpdate, RowKind};
use std::sync::Arc;
use std::time::Duration;

const IDLE: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl MemoryService {
    pub(crate) async fn backfill(self: Arc<Self>) {
        let Some(embedder) = self.embedder.clone() else {
            return;
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let batch = i64::try_from(embedder.max_batch().clamp(1, 256)).unwrap_or(64);
            let outcome = async {
                let mut kind = RowKind::Memory;
                let mut rows = self
                    .store
                    .unembedded(kind, embedder.id(), batch)
                    .await
                    .map_err(|e| e.to_string())?;
                if rows.is_empty() {
                    kind = RowKind::Chunk;
                    rows = self
                        .store
                        .unembedded(kind, embedder.id(), batch)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                if rows.is_empty() {
                    return Ok(0);
                }
                let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
                let vectors = embedder.embed(&texts).await.map_err(|e| e.to_string())?;
                if vectors.len() != rows.len() {
                    return Err("the embedder answered with the wrong number of vectors".to_owned());
                }
                let updates = rows
                    .into_iter()
                    .zip(vectors)
                    .map(|(row, vector)| EmbeddingUpdate {
                        tenant: row.tenant,
                        id: row.id,
                        version: row.version,
                        embedding: Embedding {
                            model: embedder.id().to_owned(),
                            vector,
                        },
                    })
                    .collect();
                let stored = self
                    .store
                    .set_embeddings(kind, updates)
                    .await
                    .map_err(|e| e.to_string())?;
                self.notify();
                Ok(stored.max(1))
            }
            .await;
            let pause = match outcome {
                Ok(0) => IDLE,
                Ok(_) => {
                    backoff = Duration::from_secs(1);
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, "embedding backfill failed; retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    backoff
                }
            };
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
