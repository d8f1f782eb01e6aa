-- Snapshots: one per aggregate, replaced on save. `state` is JSON text, `created_at` ISO-8601.
-- `tenant_id` is the tenant bound (`tenant_scope`) when the snapshot was saved, NULL outside any
-- scope. SQLite has no ADD COLUMN IF NOT EXISTS: the snapshot store adds `tenant_id` to tables
-- made from the documented columns on first use.
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_version INTEGER DEFAULT 1,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    tenant_id TEXT,
    UNIQUE (aggregate_id, aggregate_type)
);
