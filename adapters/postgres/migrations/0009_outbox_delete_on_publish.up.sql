-- A published outbox row is deleted by the claim that publishes it (one
-- delete mark per event instead of a new row version): the outbox holds only
-- events still to publish ('pending') and those an operator must look at
-- ('failed'). The stream holds what was published.
DELETE FROM platform_outbox_events WHERE status = 'published';
ALTER TABLE platform_outbox_events DROP CONSTRAINT platform_outbox_events_status_check;
ALTER TABLE platform_outbox_events ADD CONSTRAINT platform_outbox_events_status_check
    CHECK (status IN ('pending', 'failed'));
ALTER TABLE platform_outbox_events DROP COLUMN published_at;
