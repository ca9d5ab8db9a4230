-- Chunks carry their source, so pgvector's index scan can filter by source
-- without a join (see src/postgres/vectors.rs). PostgreSQL only: SQLite has
-- no in-database vector search.
ALTER TABLE knowledge_chunks ADD COLUMN source_id TEXT COLLATE "C";
UPDATE knowledge_chunks AS c SET source_id = d.source_id
    FROM knowledge_documents AS d WHERE d.id = c.document_id;
