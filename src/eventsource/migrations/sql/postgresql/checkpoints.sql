-- One row per projection or subscription: where it has read up to.
-- `cursor` holds the opaque commit-safe cursor of `EventStore.read_committed`.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection_name VARCHAR(255) PRIMARY KEY,
    last_event_id UUID,
    last_event_type VARCHAR(255),
    last_processed_at TIMESTAMPTZ,
    global_position BIGINT,
    cursor TEXT,
    events_processed BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Tables made from the documented columns (or by older versions) lack `cursor`.
ALTER TABLE projection_checkpoints ADD COLUMN IF NOT EXISTS cursor TEXT;
