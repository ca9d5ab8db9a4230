-- Extraction jobs. Mirrors migrations/sqlite/0005_memory_jobs.sql.
CREATE TABLE memory_jobs (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    agent_id TEXT COLLATE "C" NOT NULL,
    agent_version BIGINT NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    strategy BIGINT NOT NULL,
    from_seq BIGINT NOT NULL,
    to_seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    output TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX memory_jobs_queued ON memory_jobs (status, id);
CREATE INDEX memory_jobs_by_run ON memory_jobs (run_id);
