-- Identity and governance: scoped, expiring keys of users and service
-- accounts; each tenant's Cedar policy documents and their revision; the
-- append-only audit log. Mirrors migrations/postgres/0009_governance.sql.
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'user';
-- A JSON array of scopes; NULL is every scope of the tenant.
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);
-- Names are unique among tenants made through the API (checked when one is
-- made); older internal tenants may share one.
CREATE INDEX tenants_by_name ON tenants (name);

-- Bumped with every policy change, so a node's compiled copy knows when it
-- is stale with one indexed read.
ALTER TABLE tenants ADD COLUMN policy_revision INTEGER NOT NULL DEFAULT 0;

CREATE TABLE policies (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT,
    detail TEXT NOT NULL
) STRICT;
CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Who started each run: the head of its steps' actor chains.
ALTER TABLE runs ADD COLUMN actor TEXT;

-- Tool calls waiting for a human: one per call; the run waits in
-- `awaiting_approval` while any of its approvals is pending.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    reason TEXT NOT NULL,
    policies TEXT NOT NULL,
    actor TEXT NOT NULL,
    -- pending, approved, denied, expired or cancelled
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    note TEXT
) STRICT;
CREATE UNIQUE INDEX approvals_by_call ON approvals (tenant_id, run_id, call_id);
CREATE INDEX approvals_by_tenant ON approvals (tenant_id, status, created_at);
CREATE INDEX approvals_due ON approvals (status, expires_at);

-- Where each model call went and why it could: the provider's region and
-- the routing policy's decision (JSON).
ALTER TABLE ledger ADD COLUMN region TEXT;
ALTER TABLE ledger ADD COLUMN route TEXT;

-- What each model call cost, in millionths of a US dollar, from the
-- configured price of its model (NULL without one).
ALTER TABLE ledger ADD COLUMN cost_micros INTEGER;
CREATE INDEX ledger_by_time ON ledger (tenant_id, created_at);

-- Daily token and cost limits: scope `tenant`, or `agent:<agent id>`.
CREATE TABLE budgets (
    tenant_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    tokens_per_day INTEGER,
    cost_micros_per_day INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope)
) STRICT, WITHOUT ROWID;
