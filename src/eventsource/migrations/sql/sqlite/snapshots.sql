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
    tenant_id TEXT
);

-- The indexes eventsource-py 0.2.0 documents, under its names (migration tools refer to them).
-- The lookup index is what keeps one snapshot per aggregate (a table made beforehand with
-- UNIQUE (aggregate_id, aggregate_type) keeps that constraint as well). The schema-version one
-- serves delete_snapshots_by_type; the type-only one repeats its prefix and the created_at one
-- serves clean-ups by age: both exist for those names, at one index entry per snapshot save.
CREATE UNIQUE INDEX IF NOT EXISTS idx_snapshots_aggregate_lookup
    ON snapshots (aggregate_id, aggregate_type);
CREATE INDEX IF NOT EXISTS idx_snapshots_aggregate_type ON snapshots (aggregate_type);
CREATE INDEX IF NOT EXISTS idx_snapshots_schema_version
    ON snapshots (aggregate_type, schema_version);
CREATE INDEX IF NOT EXISTS idx_snapshots_created_at ON snapshots (created_at);
