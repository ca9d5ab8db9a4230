-- Long-term memory records, their versions, and the search log the derived
-- search index follows. A record's vector (little-endian f32) sits beside it
-- with the embedder that made it, so a change of embedder is detected and
-- the records are embedded again.
CREATE TABLE memories (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    record_key TEXT,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    source TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    embedding BLOB,
    embedding_model TEXT
);
CREATE INDEX memories_by_namespace ON memories (tenant_id, namespace, id);
CREATE UNIQUE INDEX memories_by_key ON memories (tenant_id, namespace, record_key) WHERE record_key IS NOT NULL;
CREATE INDEX memories_by_model ON memories (embedding_model, id);

CREATE TABLE memory_versions (
    memory_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    operation TEXT NOT NULL,
    principal TEXT NOT NULL,
    run_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (memory_id, version)
) WITHOUT ROWID;

-- One row per change of searchable data, in commit order: the index
-- applies them in `id` order and remembers the last one it applied.
CREATE TABLE search_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
