-- Dead-letter queue: events a projection failed on for good, one row per (event, projection).
CREATE TABLE IF NOT EXISTS dead_letter_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    projection_name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_data TEXT NOT NULL,
    error_message TEXT NOT NULL,
    error_stacktrace TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0,
    first_failed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    last_failed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    status TEXT NOT NULL DEFAULT 'failed'
        CHECK (status IN ('failed', 'retrying', 'resolved')),
    resolved_at TEXT,
    resolved_by TEXT,
    CONSTRAINT uq_dead_letter_queue_event_projection UNIQUE (event_id, projection_name)
);

CREATE INDEX IF NOT EXISTS idx_dead_letter_queue_status
    ON dead_letter_queue (status, first_failed_at);
