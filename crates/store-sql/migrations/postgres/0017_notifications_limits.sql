-- Notifications and limits. Mirrors migrations/sqlite/0017_notifications_limits.sql.
--
-- A webhook is a URL and a secret (sealed like every stored credential)
-- that notifications are signed with. A run names the webhooks told when
-- it finishes (`runs.notify`, from the request or the schedule that
-- started it); an agent names its own (`agents.notify`, copied from its
-- current version). The transaction that finishes a run adds one
-- `notifications` row per webhook: the durable outbox a sender drains,
-- each try recorded in `notification_attempts`.
CREATE TABLE webhooks (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    secret_sealed TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

CREATE TABLE notifications (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    webhook_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    leased_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_by_webhook ON notifications (tenant_id, webhook_id, id);
CREATE INDEX notifications_by_run ON notifications (tenant_id, run_id);

CREATE TABLE notification_attempts (
    notification_id TEXT COLLATE "C" NOT NULL,
    n BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    PRIMARY KEY (notification_id, n)
);

ALTER TABLE runs ADD COLUMN notify TEXT;
ALTER TABLE schedules ADD COLUMN notify TEXT;
ALTER TABLE agents ADD COLUMN notify TEXT;

-- Limits: an operator's per-tenant values (over the config's defaults),
-- an agent's own (`agents.max_running`, from its current version). A run
-- a limit holds stays queued with its reason; `held_since` orders the fair
-- queue. A run its caller waits for (`caller_waits`: a synchronous ask)
-- runs on its caller's slot, so limits cannot deadlock a delegation.
CREATE TABLE tenant_limits (
    tenant_id TEXT COLLATE "C" PRIMARY KEY,
    runs BIGINT,
    runs_per_agent BIGINT,
    updated_at BIGINT NOT NULL
);
ALTER TABLE agents ADD COLUMN max_running BIGINT;
ALTER TABLE runs ADD COLUMN caller_waits BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE runs ADD COLUMN queued_reason TEXT;
ALTER TABLE runs ADD COLUMN held_since BIGINT;
CREATE INDEX runs_held ON runs (tenant_id, held_since, id) WHERE held_since IS NOT NULL;
CREATE INDEX runs_running ON runs (tenant_id) WHERE status = 'running';
