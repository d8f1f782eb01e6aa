-- Aggregate snapshots: the latest one per aggregate.
-- `tenant_id` is the tenant bound (`tenant_scope`) when the snapshot was saved, NULL outside any
-- scope; inside a scope only that tenant's rows are visible.
CREATE TABLE IF NOT EXISTS snapshots (
    id BIGSERIAL PRIMARY KEY,
    aggregate_id UUID NOT NULL,
    aggregate_type VARCHAR(255) NOT NULL,
    version INTEGER NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1,
    state JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    tenant_id UUID,
    CONSTRAINT uq_snapshots_aggregate UNIQUE (aggregate_id, aggregate_type)
);

-- Tables made from the documented columns (or by older versions) lack `tenant_id`.
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS tenant_id UUID;
