-- Connections to company systems a tenant registers (MCP servers, SQL
-- databases, HTTP services): a JSON config without credentials, and the
-- credentials sealed by the server's secret key. Mirrors
-- migrations/sqlite/0007_integrations.sql.
CREATE TABLE integrations (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    config TEXT NOT NULL,
    sealed TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX integrations_by_name ON integrations (tenant_id, kind, name);
