-- Events: one row per stored event. `id` is the global position (AUTOINCREMENT: never reused),
-- `version` the position in the stream (aggregate_id, aggregate_type).
-- UUIDs are TEXT, timestamps ISO-8601 TEXT in UTC with microseconds (so text order is time order),
-- payload the event's full JSON dump.
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    tenant_id TEXT,
    actor_id TEXT,
    version INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT uq_events_event_id UNIQUE (event_id),
    CONSTRAINT uq_events_aggregate_version UNIQUE (aggregate_id, aggregate_type, version)
);

CREATE INDEX IF NOT EXISTS idx_events_aggregate_type_timestamp
    ON events (aggregate_type, timestamp);

CREATE INDEX IF NOT EXISTS idx_events_tenant_id
    ON events (tenant_id) WHERE tenant_id IS NOT NULL;
