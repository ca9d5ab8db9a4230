-- Connections to company systems a tenant registers (MCP servers, SQL
-- databases, HTTP services): a JSON config without credentials, and the
-- credentials sealed by the server's secret key. Mirrors
-- migrations/postgres/0008_integrations.sql.
CREATE TABLE integrations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    sealed TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX integrations_by_name ON integrations (tenant_id, kind, name);
