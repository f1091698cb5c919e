DROP TRIGGER allocations_hold_node ON allocations;
DROP FUNCTION allocations_hold_node();
DROP INDEX nodes_free_idx;
ALTER TABLE nodes DROP COLUMN live_allocation_id;
