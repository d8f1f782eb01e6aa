-- Transactional outbox: one row per event to publish, written with the event.
-- A relay publishes pending rows in rowid order, which is insertion order (SQLite writers are
-- serialised, and a new rowid is one more than the largest).
CREATE TABLE IF NOT EXISTS event_outbox (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    tenant_id TEXT,
    event_data TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    published_at TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'published', 'failed'))
);

CREATE INDEX IF NOT EXISTS idx_event_outbox_pending
    ON event_outbox (created_at) WHERE status = 'pending';

-- Entries end with the rowid: pending rows in rowid order, without a sort.
CREATE INDEX IF NOT EXISTS idx_event_outbox_pending_order
    ON event_outbox (status) WHERE status = 'pending';

-- A failed row holds back the later rows of its aggregate: the relay looks them up here.
CREATE INDEX IF NOT EXISTS idx_event_outbox_failed
    ON event_outbox (aggregate_id, aggregate_type) WHERE status = 'failed';
