-- Per-stream retention (docs/retention.md): one row per stream with a rule or a state other
-- than live. Stream reads apply the row in the same query; the purge job deletes what it hides.
-- state: live | soft_deleted | tombstoned | archived. truncate_before: versions below it are
-- gone; max_count: only the newest N versions are kept; max_age_seconds: by occurred-at time.
CREATE TABLE IF NOT EXISTS stream_metadata (
    aggregate_id UUID NOT NULL,
    aggregate_type VARCHAR(255) NOT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'live'
        CHECK (state IN ('live', 'soft_deleted', 'tombstoned', 'archived')),
    max_age_seconds DOUBLE PRECISION,
    max_count INTEGER,
    truncate_before INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (aggregate_id, aggregate_type)
);

-- The purge job's lease: one runner at a time, across processes.
CREATE TABLE IF NOT EXISTS purge_lease (
    name VARCHAR(64) PRIMARY KEY,
    holder VARCHAR(64) NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- A tombstoned stream refuses every append, forever: checked once per INSERT statement over
-- the rows it inserted (the store maps the error to StreamTombstonedError). The trigger that
-- runs it is created by the first tombstone (`eventsource._sql.retention.TOMBSTONE_GUARD`),
-- so a database without tombstones pays nothing on appends.
CREATE OR REPLACE FUNCTION eventsource_refuse_tombstoned() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM fresh_events f JOIN stream_metadata m
            ON m.aggregate_id = f.aggregate_id AND m.aggregate_type = f.aggregate_type
        WHERE m.state = 'tombstoned'
    ) THEN
        RAISE EXCEPTION 'eventsource: stream is tombstoned';
    END IF;
    RETURN NULL;
END $$;
