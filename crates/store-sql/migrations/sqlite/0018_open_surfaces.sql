-- Open surfaces (the OpenAI Responses and Conversations API, A2A, MCP).
--
-- A run may carry more than one message of input, instructions for itself
-- and tools its caller runs (`runs.turn`, JSON), and the surface's own
-- record of the request. A session may carry metadata (a conversation's).
-- An item may be removed from the history (a conversation's item delete):
-- it stays stored, out of what the model sees and what the surface lists.
-- A conversation made before it names an agent waits in `conversations`
-- with its items; the first response in it makes the session, with the
-- same id, in the same transaction.
ALTER TABLE runs ADD COLUMN turn TEXT;
ALTER TABLE sessions ADD COLUMN metadata TEXT;
ALTER TABLE items ADD COLUMN removed BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT,
    metadata TEXT,
    items TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX conversations_by_tenant ON conversations (tenant_id, id);
