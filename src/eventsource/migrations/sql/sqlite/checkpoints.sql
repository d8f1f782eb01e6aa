-- Projection checkpoints: where each projection (or subscription) has got to.
-- `cursor` holds the opaque commit-safe cursor of `EventStore.read_committed`.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection_name TEXT PRIMARY KEY,
    last_event_id TEXT,
    last_event_type TEXT,
    last_processed_at TEXT,
    global_position INTEGER,
    cursor TEXT,
    events_processed INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);
