-- An idempotency key whose request's own transaction committed, but whose
-- response was never stored (the request failed after its commit, or could
-- not learn the commit's outcome): kept, so a retry is not run a second time
-- (doc/state-machines.md#idempotency-key-idempotency_keys).
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_status_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_status_check
    CHECK (status IN ('in_flight', 'committed', 'completed'));
