-- The user a session works for (an id of the caller's choosing), so memory
-- namespaces like `users/{user}` follow a person across sessions.
ALTER TABLE sessions ADD COLUMN user_id TEXT;
