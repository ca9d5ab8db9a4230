-- Notifications (webhooks out) and limits on runs executing at once.
--
-- A webhook is a URL and a secret (sealed like every stored credential)
-- that notifications are signed with. A run names the webhooks told when
-- it finishes (`runs.notify`, from the request or the schedule that
-- started it); an agent names its own (`agents.notify`, copied from its
-- current version). The transaction that finishes a run adds one
-- `notifications` row per webhook: the durable outbox a sender drains,
-- each try recorded in `notification_attempts`.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    secret_sealed TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    leased_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_by_webhook ON notifications (tenant_id, webhook_id, id);
CREATE INDEX notifications_by_run ON notifications (tenant_id, run_id);

CREATE TABLE notification_attempts (
    notification_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    PRIMARY KEY (notification_id, n)
) WITHOUT ROWID;

ALTER TABLE runs ADD COLUMN notify TEXT;
ALTER TABLE schedules ADD COLUMN notify TEXT;
ALTER TABLE agents ADD COLUMN notify TEXT;

-- Limits: an operator's per-tenant values (over the config's defaults),
-- an agent's own (`agents.max_running`, from its current version). A run
-- a limit holds stays queued with its reason; `held_since` orders the fair
-- queue. A run its caller waits for (`caller_waits`: a synchronous ask)
-- runs on its caller's slot, so limits cannot deadlock a delegation.
CREATE TABLE tenant_limits (
    tenant_id TEXT PRIMARY KEY,
    runs INTEGER,
    runs_per_agent INTEGER,
    updated_at INTEGER NOT NULL
);
ALTER TABLE agents ADD COLUMN max_running INTEGER;
ALTER TABLE runs ADD COLUMN caller_waits BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE runs ADD COLUMN queued_reason TEXT;
ALTER TABLE runs ADD COLUMN held_since INTEGER;
CREATE INDEX runs_held ON runs (tenant_id, held_since, id) WHERE held_since IS NOT NULL;
CREATE INDEX runs_running ON runs (tenant_id) WHERE status = 'running';
