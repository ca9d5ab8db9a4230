-- Delegation: runs another agent's run started, and the sessions they run in.
--
-- A delegate session belongs to the caller's session (`parent_session_id`):
-- one per caller session and callee agent, so the callee keeps its context
-- across calls. A run started by another run names it (`parent_run_id`),
-- counts its hops from the run a person or a system started (`depth`), and,
-- when it was handed off, names the session its result is delivered to as a
-- new input (`deliver_to`), in the transaction that finishes it.
ALTER TABLE sessions ADD COLUMN parent_session_id TEXT;
CREATE UNIQUE INDEX sessions_delegate ON sessions (parent_session_id, agent_id)
    WHERE parent_session_id IS NOT NULL;
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN deliver_to TEXT;
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
