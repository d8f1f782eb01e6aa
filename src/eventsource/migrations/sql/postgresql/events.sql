-- The event store table (PostgreSQL 13+). Every statement is idempotent, and the script also
-- upgrades an older `events` table in place (e.g. one created without the `id` position column).
--
-- id     : global position, handed out in insert order (not commit order).
-- tx_id  : the writing transaction; readers that follow the whole store order by (tx_id, id)
--          below the snapshot xmin, so a transaction that commits late is never skipped.
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    aggregate_id UUID NOT NULL,
    aggregate_type VARCHAR(255) NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    tenant_id UUID,
    actor_id VARCHAR(255),
    version INTEGER NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    tx_id XID8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT uq_events_aggregate_version UNIQUE (aggregate_id, aggregate_type, version)
);

ALTER TABLE events ADD COLUMN IF NOT EXISTS id BIGSERIAL;

ALTER TABLE events ADD COLUMN IF NOT EXISTS tx_id XID8 NOT NULL DEFAULT pg_current_xact_id();

-- An upgraded table has `id` without an index; a new one has it as its primary key.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = 'events'::regclass AND a.attname = 'id'
    ) THEN
        CREATE UNIQUE INDEX events_id_key ON events (id);
    END IF;
END $$;

CREATE INDEX IF NOT EXISTS idx_events_tx_id_id ON events (tx_id, id);

CREATE INDEX IF NOT EXISTS idx_events_type_timestamp ON events (aggregate_type, "timestamp");

CREATE INDEX IF NOT EXISTS idx_events_tenant_id ON events (tenant_id, aggregate_type)
    WHERE tenant_id IS NOT NULL;
