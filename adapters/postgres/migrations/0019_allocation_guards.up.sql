-- Agent-safe allocations (doc/cli.md, "Agent-safe API"): the API key an
-- allocation was requested with (its daily spend cap counts what the key's
-- allocations cost) and an optional cap on the allocation's total cost,
-- which the billing worker enforces by releasing it.
ALTER TABLE allocations ADD COLUMN api_key_id uuid REFERENCES api_keys(id) ON DELETE SET NULL;
ALTER TABLE allocations ADD COLUMN max_total_cost_minor bigint CHECK (max_total_cost_minor > 0);
CREATE INDEX allocations_api_key_idx ON allocations (api_key_id, created_at) WHERE api_key_id IS NOT NULL;
CREATE INDEX allocations_cost_capped_idx ON allocations (id)
    WHERE max_total_cost_minor IS NOT NULL AND state IN ('requested', 'provisioning', 'active', 'release_failed');
