-- Back to jsonb. A row whose envelope jsonb refuses (a \u0000 in a string,
-- which json accepts) makes this fail: publish or delete it first.
ALTER TABLE platform_outbox_events ALTER COLUMN envelope TYPE jsonb USING envelope::jsonb;
ALTER TABLE platform_outbox_events DROP COLUMN traceparent;
