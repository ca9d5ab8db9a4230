-- Sessions' users. Mirrors migrations/sqlite/0006_session_user.sql.
ALTER TABLE sessions ADD COLUMN user_id TEXT;
