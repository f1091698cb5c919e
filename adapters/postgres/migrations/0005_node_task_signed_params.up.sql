-- A task's signature covers its parameters byte for byte, but jsonb
-- normalises key order and whitespace. Keep the exact signed bytes beside the
-- queryable jsonb so the agent can verify what it is handed.
ALTER TABLE node_tasks ADD COLUMN signed_params bytea NOT NULL DEFAULT '\x';
ALTER TABLE node_tasks ALTER COLUMN signed_params DROP DEFAULT;
