//! What a memory write does to a record, decided once for both backends:
//! given the record as stored (if any), the new state, the version entry
//! and whether the row is inserted, updated or deleted. Each backend then
//! only runs its own SQL.

use crate::StoreError;
use chrono::{DateTime, Utc};
use roster_core::record::MemoryRecord;
use roster_core::MemoryId;
use roster_store::{Embedding, MemoryOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowChange {
    Insert,
    Update,
    Delete,
}

pub(crate) struct Planned {
    pub record: MemoryRecord,
    pub change: RowChange,
    /// `create`, `update` or `delete`, for the version history.
    pub operation: &'static str,
    /// The vector to store; `None` on a content change without one clears
    /// the old vector (it no longer describes the text).
    pub embedding: Option<Embedding>,
    /// Whether the stored vector stays as it is.
    pub keep_embedding: bool,
}

/// The record a write addresses: by id, or for a keyed create by its
/// namespace and key.
pub(crate) enum Target<'a> {
    Id(&'a MemoryId),
    Key { namespace: &'a str, key: &'a str },
}

pub(crate) fn target(op: &MemoryOp) -> Target<'_> {
    match op {
        MemoryOp::Create {
            namespace,
            key: Some(key),
            ..
        } => Target::Key { namespace, key },
        MemoryOp::Create { id, .. } => Target::Id(id),
        MemoryOp::Update { id, .. } | MemoryOp::Delete { id, .. } => Target::Id(id),
    }
}

pub(crate) fn plan(
    op: MemoryOp,
    current: Option<MemoryRecord>,
    now: DateTime<Utc>,
) -> Result<Planned, StoreError> {
    let check_version = |record: &MemoryRecord, expected: Option<i64>| match expected {
        Some(v) if v != record.version => Err(StoreError::Conflict(format!(
            "memory {} is at version {}, not {v}",
            record.id, record.version
        ))),
        _ => Ok(()),
    };
    match op {
        MemoryOp::Create {
            id,
            namespace,
            kind,
            key,
            content,
            metadata,
            source,
            expires_at,
            embedding,
        } => match current {
            // A keyed create of an existing key: the strategy's record moves on.
            Some(mut record) => {
                let same_text = record.content == content;
                record.content = content;
                record.kind = kind;
                record.metadata = metadata;
                record.source = source.or(record.source);
                record.expires_at = expires_at;
                record.version += 1;
                record.updated_at = now;
                Ok(Planned {
                    record,
                    change: RowChange::Update,
                    operation: "update",
                    keep_embedding: same_text && embedding.is_none(),
                    embedding,
                })
            }
            None => Ok(Planned {
                record: MemoryRecord {
                    id,
                    namespace,
                    content,
                    kind,
                    key,
                    metadata,
                    source,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    expires_at,
                },
                change: RowChange::Insert,
                operation: "create",
                keep_embedding: false,
                embedding,
            }),
        },
        MemoryOp::Update {
            id,
            expected_version,
            content,
            metadata,
            expires_at,
            source,
            embedding,
        } => {
            let mut record = current.ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
            check_version(&record, expected_version)?;
            let text_changed = content.as_ref().is_some_and(|c| *c != record.content);
            if let Some(content) = content {
                record.content = content;
            }
            if let Some(metadata) = metadata {
                record.metadata = metadata;
            }
            if let Some(expires_at) = expires_at {
                record.expires_at = expires_at;
            }
            if source.is_some() {
                record.source = source;
            }
            record.version += 1;
            record.updated_at = now;
            Ok(Planned {
                record,
                change: RowChange::Update,
                operation: "update",
                keep_embedding: !text_changed && embedding.is_none(),
                embedding,
            })
        }
        MemoryOp::Delete {
            id,
            expected_version,
        } => {
            let mut record = current.ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
            check_version(&record, expected_version)?;
            record.version += 1;
            record.updated_at = now;
            Ok(Planned {
                record,
                change: RowChange::Delete,
                operation: "delete",
                keep_embedding: false,
                embedding: None,
            })
        }
    }
}
