-- Core schema: tenants, keys, agents, memory blocks, sessions, items, runs,
-- the step journal, run events and the usage ledger. Mirrors
-- migrations/sqlite/0001_core.sql column for column: times are Unix
-- milliseconds (BIGINT) and JSON documents are TEXT, so both backends decode
-- the same way. Identifiers, names and labels use the "C" collation so that
-- ORDER BY sorts bytewise, as SQLite does, whatever the database's locale
-- (ids are time-ordered UUIDv7 strings and their order is relied on).
CREATE TABLE tenants (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    key_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    is_admin BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE agents (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    current_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX agents_live_name ON agents (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE agent_versions (
    agent_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, version)
);

CREATE TABLE memory_blocks (
    agent_id TEXT COLLATE "C" NOT NULL,
    label TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    char_limit BIGINT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, label)
);

CREATE TABLE memory_block_versions (
    agent_id TEXT COLLATE "C" NOT NULL,
    label TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    operation TEXT NOT NULL,
    run_id TEXT COLLATE "C",
    principal TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, label, version)
);

CREATE TABLE sessions (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    agent_id TEXT COLLATE "C" NOT NULL,
    agent_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_tenant ON sessions (tenant_id, id);

-- Append-only tables are keyed (tenant_id, parent, seq): every query gives
-- both, so reading a session's tail is an index range scan of LIMIT rows
-- whatever the table's statistics say (tenant_id leads).
CREATE TABLE items (
    session_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C",
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, session_id, seq)
);

CREATE TABLE runs (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    agent_version BIGINT NOT NULL,
    idempotency_key TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX runs_by_session ON runs (session_id, status, id);
CREATE UNIQUE INDEX runs_idempotency ON runs (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_unfinished ON runs (status) WHERE status IN ('queued', 'running', 'awaiting_approval');

CREATE TABLE steps (
    run_id TEXT COLLATE "C" NOT NULL,
    n BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (tenant_id, run_id, n)
);

CREATE TABLE run_events (
    run_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, run_id, seq)
);

CREATE TABLE ledger (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    agent_id TEXT COLLATE "C",
    session_id TEXT COLLATE "C",
    run_id TEXT COLLATE "C",
    step BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_by_tenant ON ledger (tenant_id, id);
CREATE INDEX ledger_by_run ON ledger (run_id);
