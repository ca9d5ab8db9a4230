-- Extraction jobs: after a run completes, each of the agent's memory
-- strategies runs once, in the background. A job is created in the same
-- transaction that completes its run, journals its model reply (`output`)
-- before applying it, and applies its memory writes in the transaction that
-- completes it, so a crash never loses, repeats or half-applies one.
CREATE TABLE memory_jobs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    agent_version INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    strategy INTEGER NOT NULL,
    from_seq INTEGER NOT NULL,
    to_seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    output TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX memory_jobs_queued ON memory_jobs (status, id);
CREATE INDEX memory_jobs_by_run ON memory_jobs (run_id);
