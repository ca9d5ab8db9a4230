-- Identity and governance: scoped, expiring keys of users and service
-- accounts; each tenant's Cedar policy documents and their revision; the
-- append-only audit log. Mirrors migrations/sqlite/0008_governance.sql.
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'user';
-- A JSON array of scopes; NULL is every scope of the tenant.
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);
-- Names are unique among tenants made through the API (checked when one is
-- made); older internal tenants may share one.
CREATE INDEX tenants_by_name ON tenants (name);

-- Bumped with every policy change, so a node's compiled copy knows when it
-- is stale with one indexed read.
ALTER TABLE tenants ADD COLUMN policy_revision BIGINT NOT NULL DEFAULT 0;

CREATE TABLE policies (
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE audit_events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant_id TEXT COLLATE "C" NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, seq);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- Who started each run: the head of its steps' actor chains.
ALTER TABLE runs ADD COLUMN actor TEXT;

-- Tool calls waiting for a human: one per call; the run waits in
-- `awaiting_approval` while any of its approvals is pending.
CREATE TABLE approvals (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    step BIGINT NOT NULL,
    call_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    reason TEXT NOT NULL,
    policies TEXT NOT NULL,
    actor TEXT NOT NULL,
    -- pending, approved, denied, expired or cancelled
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    note TEXT
);
CREATE UNIQUE INDEX approvals_by_call ON approvals (tenant_id, run_id, call_id);
CREATE INDEX approvals_by_tenant ON approvals (tenant_id, status, created_at);
CREATE INDEX approvals_due ON approvals (status, expires_at);

-- Where each model call went and why it could: the provider's region and
-- the routing policy's decision (JSON).
ALTER TABLE ledger ADD COLUMN region TEXT;
ALTER TABLE ledger ADD COLUMN route TEXT;

-- What each model call cost, in millionths of a US dollar, from the
-- configured price of its model (NULL without one).
ALTER TABLE ledger ADD COLUMN cost_micros BIGINT;
CREATE INDEX ledger_by_time ON ledger (tenant_id, created_at);

-- Daily token and cost limits: scope `tenant`, or `agent:<agent id>`.
CREATE TABLE budgets (
    tenant_id TEXT COLLATE "C" NOT NULL,
    scope TEXT COLLATE "C" NOT NULL,
    tokens_per_day BIGINT,
    cost_micros_per_day BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope)
);
