-- Delegation. Mirrors migrations/sqlite/0014_delegation.sql: delegate
-- sessions (one per caller session and callee agent), and runs started by
-- another run (`parent_run_id`, `depth`, and for a hand-off the session its
-- result is delivered to, `deliver_to`).
ALTER TABLE sessions ADD COLUMN parent_session_id TEXT COLLATE "C";
CREATE UNIQUE INDEX sessions_delegate ON sessions (parent_session_id, agent_id)
    WHERE parent_session_id IS NOT NULL;
ALTER TABLE runs ADD COLUMN parent_run_id TEXT COLLATE "C";
ALTER TABLE runs ADD COLUMN depth BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN deliver_to TEXT COLLATE "C";
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
