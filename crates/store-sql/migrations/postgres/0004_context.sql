-- Session summaries and runs.first_seq. Mirrors migrations/sqlite/0004_context.sql.
CREATE TABLE session_summaries (
    session_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    through_seq BIGINT NOT NULL,
    text TEXT NOT NULL,
    run_id TEXT,
    step BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, version)
);

ALTER TABLE runs ADD COLUMN first_seq BIGINT;
