-- Privacy between users: keys that act for users, and memory blocks with a
-- copy per user or per session. Mirrors migrations/sqlite/0012_user_privacy.sql.

-- A `user` key acts as `user_id` (NULL: as no user). A `service` key may
-- act for the users in `act_for`, a JSON array (NULL: for any user).
ALTER TABLE api_keys ADD COLUMN user_id TEXT COLLATE "C";
ALTER TABLE api_keys ADD COLUMN act_for TEXT;

-- Sessions listed for a key that sees only some users' sessions.
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id, id);

-- A block row belongs to an owner: `agent` (the agent's own value, the
-- template of `user` and `session` blocks), `user:NAME` or `session:ID`.
-- The owner sits before the label in the key, so a turn reads its two or
-- three owners' rows by range, however many users the agent has.
ALTER TABLE memory_blocks ADD COLUMN owner TEXT COLLATE "C" NOT NULL DEFAULT 'agent';
ALTER TABLE memory_blocks ALTER COLUMN owner DROP DEFAULT;
ALTER TABLE memory_blocks DROP CONSTRAINT memory_blocks_pkey;
ALTER TABLE memory_blocks ADD PRIMARY KEY (agent_id, owner, label);

ALTER TABLE memory_block_versions ADD COLUMN owner TEXT COLLATE "C" NOT NULL DEFAULT 'agent';
ALTER TABLE memory_block_versions ALTER COLUMN owner DROP DEFAULT;
ALTER TABLE memory_block_versions DROP CONSTRAINT memory_block_versions_pkey;
ALTER TABLE memory_block_versions ADD PRIMARY KEY (agent_id, owner, label, version);

-- Agent versions now list their blocks; every block stored so far was
-- shared by all users, so each version lists its agent's blocks as `agent`.
UPDATE agent_versions v SET config = jsonb_set(
    v.config::jsonb, '{memory_blocks}',
    COALESCE((SELECT jsonb_agg(jsonb_build_object('label', b.label, 'scope', 'agent') ORDER BY b.label)
              FROM memory_blocks b WHERE b.agent_id = v.agent_id), '[]'::jsonb))::text
WHERE NOT (v.config::jsonb ? 'memory_blocks');
