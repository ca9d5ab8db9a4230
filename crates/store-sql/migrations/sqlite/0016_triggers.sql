-- Triggers: webhooks in. A trigger starts a run of its agent for each
-- signed delivery; `secret_sealed` is the HMAC key, sealed like every
-- stored credential. A delivery id is recorded with the run it started,
-- in one transaction, so a retried delivery starts nothing more.
CREATE TABLE triggers (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    template TEXT NOT NULL,
    session_id TEXT,
    secret_sealed TEXT NOT NULL,
    created_by TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX triggers_by_tenant ON triggers (tenant_id, id);

CREATE TABLE trigger_deliveries (
    trigger_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (trigger_id, delivery_id)
) WITHOUT ROWID;
