-- Busy sessions. Mirrors migrations/sqlite/0013_busy_sessions.sql.
--
-- `interrupted_by`: the run whose `if_busy: interrupt` or `rollback` stopped
-- this one, written in the transaction that stores it, so recovery cancels
-- what a crash left running. `rolled_back`: its items are left out of the
-- history the model sees (kept for the API).
ALTER TABLE runs ADD COLUMN interrupted_by TEXT COLLATE "C";
ALTER TABLE runs ADD COLUMN rolled_back BOOLEAN NOT NULL DEFAULT FALSE;
