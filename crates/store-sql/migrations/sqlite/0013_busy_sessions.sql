-- Busy sessions: a run stopped by a later input's `if_busy: interrupt` or
-- `rollback`. Both are written in the transaction that stores the later
-- run, so a crash between storing it and cancelling the earlier ones still
-- cancels them on recovery.
--
-- `interrupted_by`: the run whose input stopped this one. `rolled_back`: its
-- items are left out of the history the model sees (kept for the API).
ALTER TABLE runs ADD COLUMN interrupted_by TEXT;
ALTER TABLE runs ADD COLUMN rolled_back INTEGER NOT NULL DEFAULT 0;
