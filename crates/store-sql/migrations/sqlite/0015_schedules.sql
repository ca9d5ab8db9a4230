-- Schedules: an agent woken at set times with a set input, and one row per
-- firing, written in the transaction that starts its run, so a fire time
-- fires once however often it is tried (restarts, several nodes).
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    cron TEXT,
    at_time INTEGER,
    timezone TEXT NOT NULL,
    input TEXT NOT NULL,
    session_id TEXT,
    catch_up TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_fire_at INTEGER,
    fired_count INTEGER NOT NULL DEFAULT 0,
    last_fired_at INTEGER,
    created_by TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX schedules_by_tenant ON schedules (tenant_id, id);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;

CREATE TABLE schedule_firings (
    schedule_id TEXT NOT NULL,
    fire_at INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT,
    session_id TEXT,
    detail TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, fire_at)
) WITHOUT ROWID;
