-- Per-stream retention (docs/retention.md): one row per stream with a rule or a state other
-- than live. Stream reads apply the row in the same query; the purge job deletes what it hides.
-- state: live | soft_deleted | tombstoned | archived. truncate_before: versions below it are
-- gone; max_count: only the newest N versions are kept; max_age_seconds: by occurred-at time.
CREATE TABLE IF NOT EXISTS stream_metadata (
    aggregate_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'live'
        CHECK (state IN ('live', 'soft_deleted', 'tombstoned', 'archived')),
    max_age_seconds REAL,
    max_count INTEGER,
    truncate_before INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, aggregate_type)
);

-- The purge job's lease: one runner at a time, across processes.
CREATE TABLE IF NOT EXISTS purge_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
