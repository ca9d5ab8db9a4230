-- Privacy between users: keys that act for users, and memory blocks with a
-- copy per user or per session.

-- A `user` key acts as `user_id` (NULL: as no user). A `service` key may
-- act for the users in `act_for`, a JSON array (NULL: for any user).
ALTER TABLE api_keys ADD COLUMN user_id TEXT;
ALTER TABLE api_keys ADD COLUMN act_for TEXT;

-- Sessions listed for a key that sees only some users' sessions.
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id, id);

-- A block row belongs to an owner: `agent` (the agent's own value, the
-- template of `user` and `session` blocks), `user:NAME` or `session:ID`.
-- The owner sits before the label in the key, so a turn reads its two or
-- three owners' rows by range, however many users the agent has.
CREATE TABLE memory_blocks_owned (
    agent_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    label TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    value TEXT NOT NULL,
    char_limit INTEGER NOT NULL,
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, owner, label)
) WITHOUT ROWID;
INSERT INTO memory_blocks_owned (agent_id, owner, label, tenant_id, value, char_limit, version, updated_at)
    SELECT agent_id, 'agent', label, tenant_id, value, char_limit, version, updated_at FROM memory_blocks;
DROP TABLE memory_blocks;
ALTER TABLE memory_blocks_owned RENAME TO memory_blocks;

CREATE TABLE memory_block_versions_owned (
    agent_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    label TEXT NOT NULL,
    version INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    value TEXT NOT NULL,
    operation TEXT NOT NULL,
    run_id TEXT,
    principal TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, owner, label, version)
) WITHOUT ROWID;
INSERT INTO memory_block_versions_owned (agent_id, owner, label, version, tenant_id, value, operation, run_id, principal, created_at)
    SELECT agent_id, 'agent', label, version, tenant_id, value, operation, run_id, principal, created_at FROM memory_block_versions;
DROP TABLE memory_block_versions;
ALTER TABLE memory_block_versions_owned RENAME TO memory_block_versions;

-- Agent versions now list their blocks; every block stored so far was
-- shared by all users, so each version lists its agent's blocks as `agent`.
UPDATE agent_versions SET config = json_set(config, '$.memory_blocks', json((
    SELECT json_group_array(json_object('label', label, 'scope', 'agent'))
    FROM (SELECT label FROM memory_blocks b
          WHERE b.agent_id = agent_versions.agent_id ORDER BY label))))
WHERE json_extract(config, '$.memory_blocks') IS NULL;
