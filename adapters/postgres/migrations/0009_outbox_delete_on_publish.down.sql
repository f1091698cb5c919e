ALTER TABLE platform_outbox_events ADD COLUMN IF NOT EXISTS published_at timestamptz;
ALTER TABLE platform_outbox_events DROP CONSTRAINT IF EXISTS platform_outbox_events_status_check;
ALTER TABLE platform_outbox_events ADD CONSTRAINT platform_outbox_events_status_check
    CHECK (status IN ('pending', 'published', 'failed'));
