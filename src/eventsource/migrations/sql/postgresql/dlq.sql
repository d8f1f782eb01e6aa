-- Dead-letter queue: events a projection failed on for good, one row per (event, projection).
CREATE TABLE IF NOT EXISTS dead_letter_queue (
    id BIGSERIAL PRIMARY KEY,
    event_id UUID NOT NULL,
    projection_name VARCHAR(255) NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    event_data JSONB NOT NULL,
    error_message TEXT NOT NULL,
    error_stacktrace TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0,
    first_failed_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_failed_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    status VARCHAR(20) NOT NULL DEFAULT 'failed'
        CHECK (status IN ('failed', 'retrying', 'resolved')),
    resolved_at TIMESTAMPTZ,
    resolved_by VARCHAR(255),
    CONSTRAINT uq_dlq_event_projection UNIQUE (event_id, projection_name)
);

CREATE INDEX IF NOT EXISTS idx_dlq_status_first_failed ON dead_letter_queue (status, first_failed_at);

CREATE INDEX IF NOT EXISTS idx_dlq_projection ON dead_letter_queue (projection_name, status);
