-- Remote A2A agents (`a2a:NAME` tools). Their registrations are rows of
-- `integrations` (kind `a2a`: the card URL and what the card said, the
-- credential sealed). New here: the conversation each Roster session holds
-- with each remote — the remote's contextId, and a task it left waiting
-- for input — so a later call, after a restart too, continues it. Keyed by
-- the registration's id: a remote registered again starts afresh.
-- Mirrors migrations/sqlite/0019_remotes.sql.
CREATE TABLE remote_contexts (
    tenant_id TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    context_id TEXT NOT NULL,
    task_id TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, remote_id, session_id)
);
