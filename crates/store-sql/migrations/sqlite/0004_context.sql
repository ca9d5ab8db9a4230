-- The running summary of each session's folded history (append-only: the
-- newest version is the one in use), and where each run's items begin, so
-- a finished run can hand its items to the search index in one log entry.
CREATE TABLE session_summaries (
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    through_seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    run_id TEXT,
    step INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, version)
) WITHOUT ROWID;

ALTER TABLE runs ADD COLUMN first_seq INTEGER;
