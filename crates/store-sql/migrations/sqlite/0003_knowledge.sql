-- Knowledge sources: named sets of documents (company data), each document
-- chunked into citable passages. A document's chunks are replaced whole in
-- one transaction when it changes, so search never sees half of a version.
CREATE TABLE knowledge_sources (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX knowledge_sources_by_name ON knowledge_sources (tenant_id, name);

CREATE TABLE knowledge_documents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT,
    content_hash TEXT,
    bytes INTEGER NOT NULL,
    chars INTEGER NOT NULL,
    version INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    -- Most chunks any version had: the index removes ordinals up to here.
    max_chunks INTEGER NOT NULL,
    error_code TEXT,
    error_message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX knowledge_documents_by_path ON knowledge_documents (source_id, path);
CREATE INDEX knowledge_documents_by_tenant ON knowledge_documents (tenant_id, source_id, path);

CREATE TABLE knowledge_chunks (
    document_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL,
    location TEXT NOT NULL,
    -- Where the chunk is, for people: `lines 10-24`, `page 3`.
    citation TEXT NOT NULL,
    embedding BLOB,
    embedding_model TEXT,
    PRIMARY KEY (document_id, ordinal)
) WITHOUT ROWID;
CREATE INDEX knowledge_chunks_by_model ON knowledge_chunks (embedding_model, document_id, ordinal);
