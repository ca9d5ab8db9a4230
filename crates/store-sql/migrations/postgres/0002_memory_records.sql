-- Long-term memory records, their versions, and the search log the derived
-- search index follows. Mirrors migrations/sqlite/0002_memory_records.sql.
-- Writers take a transaction-level advisory lock before appending to
-- search_log, so log ids become visible in increasing order and a reader
-- that remembers the last id it applied never skips a row.
CREATE TABLE memories (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    record_key TEXT COLLATE "C",
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    source TEXT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    embedding BYTEA,
    embedding_model TEXT COLLATE "C"
);
CREATE INDEX memories_by_namespace ON memories (tenant_id, namespace, id);
CREATE UNIQUE INDEX memories_by_key ON memories (tenant_id, namespace, record_key) WHERE record_key IS NOT NULL;
CREATE INDEX memories_by_model ON memories (embedding_model, id);

CREATE TABLE memory_versions (
    memory_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    operation TEXT NOT NULL,
    principal TEXT NOT NULL,
    run_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (memory_id, version)
);

CREATE TABLE search_log (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);
