DROP INDEX IF EXISTS allocations_cost_capped_idx;
DROP INDEX IF EXISTS allocations_api_key_idx;
ALTER TABLE allocations DROP COLUMN IF EXISTS max_total_cost_minor;
ALTER TABLE allocations DROP COLUMN IF EXISTS api_key_id;
