-- The outbox keeps each envelope as the producer encoded it: json (text,
-- checked to be JSON) instead of jsonb. A claim then returns the stored bytes
-- as they are, where jsonb had to render every envelope back to text (a third
-- of the claim's database time); an insert only checks the text instead of
-- building jsonb. The operators ->, ->> and casts work on json as they did,
-- so queries by hand and in tests read it as before.
--
-- traceparent is the envelope's trace context beside it (empty: none), so
-- the relay sets the NATS header without reading into the JSON. NULL means
-- the row was written without it (before this migration, or by a producer of
-- the previous release during a rolling upgrade); the claim reads those from
-- the envelope.
--
-- Rolling upgrade: a previous release keeps working against this schema. Its
-- producers insert body::jsonb, which the assignment cast jsonb → json stores
-- (normalised as jsonb renders it) with traceparent NULL; its relays claim
-- with envelope::text and envelope->>'traceparent', both valid on json.
ALTER TABLE platform_outbox_events ADD COLUMN traceparent text;
ALTER TABLE platform_outbox_events ALTER COLUMN envelope TYPE json USING envelope::json;
