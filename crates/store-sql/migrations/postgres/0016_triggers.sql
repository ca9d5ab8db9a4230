-- Triggers. Mirrors migrations/sqlite/0016_triggers.sql: webhooks in, and
-- each delivery id recorded with the run it started.
CREATE TABLE triggers (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    agent_id TEXT COLLATE "C" NOT NULL,
    template TEXT NOT NULL,
    session_id TEXT COLLATE "C",
    secret_sealed TEXT NOT NULL,
    created_by TEXT NOT NULL,
    key_id TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX triggers_by_tenant ON triggers (tenant_id, id);

CREATE TABLE trigger_deliveries (
    trigger_id TEXT COLLATE "C" NOT NULL,
    delivery_id TEXT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (trigger_id, delivery_id)
);
