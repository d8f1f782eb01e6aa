-- Transactional outbox: one row per stored event, written in the append's transaction.
--
-- seq : insertion order. A relay publishes pending rows in `seq` order; the appends of one
--       aggregate are serialised (its version constraint), so they get increasing `seq` values
--       in version order. (`created_at` is the transaction's start and `id` is random: neither
--       orders the rows of one append, nor appends that waited on each other.)
CREATE TABLE IF NOT EXISTS event_outbox (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id UUID NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    aggregate_id UUID NOT NULL,
    aggregate_type VARCHAR(255) NOT NULL,
    tenant_id UUID,
    event_data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    published_at TIMESTAMPTZ,
    retry_count INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    status VARCHAR(20) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'published', 'failed')),
    seq BIGSERIAL NOT NULL
);

-- Tables made before `seq` existed: existing rows are numbered in no particular order.
ALTER TABLE event_outbox ADD COLUMN IF NOT EXISTS seq BIGSERIAL NOT NULL;

CREATE INDEX IF NOT EXISTS idx_event_outbox_pending ON event_outbox (created_at)
    WHERE status = 'pending';

CREATE INDEX IF NOT EXISTS idx_event_outbox_pending_seq ON event_outbox (seq)
    WHERE status = 'pending';

-- A failed row holds back the later rows of its aggregate: the relay looks them up here.
CREATE INDEX IF NOT EXISTS idx_event_outbox_failed ON event_outbox (aggregate_id, aggregate_type)
    WHERE status = 'failed';

CREATE INDEX IF NOT EXISTS idx_event_outbox_event_id ON event_outbox (event_id);
