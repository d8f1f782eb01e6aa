-- An alternative `events` table, hash-partitioned by aggregate (PostgreSQL 13+): one stream lives
-- in one partition, so stream reads touch one partition and the per-stream version constraint
-- stays enforced. Create it INSTEAD of events.sql, before any store runs.
--
-- PostgreSQL unique constraints on a partitioned table must contain the partition key, so
-- event_id is unique per aggregate here (the store still skips ids it already holds; a concurrent
-- append of the same event id to two different aggregates is not caught by the database).
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL NOT NULL,
    event_id UUID NOT NULL,
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
    PRIMARY KEY (id, aggregate_id),
    CONSTRAINT uq_events_event_id UNIQUE (event_id, aggregate_id),
    CONSTRAINT uq_events_aggregate_version UNIQUE (aggregate_id, aggregate_type, version)
) PARTITION BY HASH (aggregate_id);

CREATE TABLE IF NOT EXISTS events_p0 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE IF NOT EXISTS events_p1 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE IF NOT EXISTS events_p2 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE IF NOT EXISTS events_p3 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE IF NOT EXISTS events_p4 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE IF NOT EXISTS events_p5 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE IF NOT EXISTS events_p6 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE IF NOT EXISTS events_p7 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 7);

CREATE INDEX IF NOT EXISTS idx_events_event_id ON events (event_id);

CREATE INDEX IF NOT EXISTS idx_events_tx_id_id ON events (tx_id, id);

CREATE INDEX IF NOT EXISTS idx_events_type_timestamp ON events (aggregate_type, "timestamp");

CREATE INDEX IF NOT EXISTS idx_events_tenant_id ON events (tenant_id, aggregate_type)
    WHERE tenant_id IS NOT NULL;
