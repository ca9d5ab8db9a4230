-- Knowledge sources, documents and chunks. Mirrors
-- migrations/sqlite/0003_knowledge.sql.
CREATE TABLE knowledge_sources (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX knowledge_sources_by_name ON knowledge_sources (tenant_id, name);

CREATE TABLE knowledge_documents (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    kind TEXT,
    content_hash TEXT,
    bytes BIGINT NOT NULL,
    chars BIGINT NOT NULL,
    version BIGINT NOT NULL,
    chunks BIGINT NOT NULL,
    -- Most chunks any version had: the index removes ordinals up to here.
    max_chunks BIGINT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX knowledge_documents_by_path ON knowledge_documents (source_id, path);
CREATE INDEX knowledge_documents_by_tenant ON knowledge_documents (tenant_id, source_id, path);

CREATE TABLE knowledge_chunks (
    document_id TEXT COLLATE "C" NOT NULL,
    ordinal BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    text TEXT NOT NULL,
    location TEXT NOT NULL,
    -- Where the chunk is, for people: `lines 10-24`, `page 3`.
    citation TEXT NOT NULL,
    embedding BYTEA,
    embedding_model TEXT COLLATE "C",
    PRIMARY KEY (document_id, ordinal)
);
CREATE INDEX knowledge_chunks_by_model ON knowledge_chunks (embedding_model, document_id, ordinal);
