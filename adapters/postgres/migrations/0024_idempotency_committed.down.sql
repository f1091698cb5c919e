-- A committed key without a response stays held until it expires, as an
-- in-flight one does.
UPDATE idempotency_keys SET status = 'in_flight' WHERE status = 'committed';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_status_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_status_check
    CHECK (status IN ('in_flight', 'completed'));
