-- Schedules. Mirrors migrations/sqlite/0015_schedules.sql: schedules, and
-- one row per firing written in the transaction that starts its run.
CREATE TABLE schedules (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    agent_id TEXT COLLATE "C" NOT NULL,
    cron TEXT,
    at_time BIGINT,
    timezone TEXT NOT NULL,
    input TEXT NOT NULL,
    session_id TEXT COLLATE "C",
    catch_up TEXT NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    next_fire_at BIGINT,
    fired_count BIGINT NOT NULL DEFAULT 0,
    last_fired_at BIGINT,
    created_by TEXT NOT NULL,
    key_id TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX schedules_by_tenant ON schedules (tenant_id, id);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;

CREATE TABLE schedule_firings (
    schedule_id TEXT COLLATE "C" NOT NULL,
    fire_at BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT COLLATE "C",
    session_id TEXT COLLATE "C",
    detail TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, fire_at)
);
