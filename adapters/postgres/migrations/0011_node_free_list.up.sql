-- Placement in O(log n): every node names the live allocation that holds it
-- (NULL when free), kept by a trigger on allocations so no code path can
-- forget it, and a partial index lists exactly the free active nodes of a
-- SKU. The pick walks that index instead of scanning the fleet with an
-- anti-join. The unique index allocations_one_live_per_node stays the
-- guarantee against double booking; this column only makes the pick cheap.
ALTER TABLE nodes ADD COLUMN live_allocation_id uuid;

UPDATE nodes n SET live_allocation_id = a.id
FROM allocations a
WHERE a.node_id = n.id AND a.state IN ('requested', 'provisioning', 'active', 'releasing', 'release_failed');

CREATE INDEX nodes_free_idx ON nodes (sku_id, id) WHERE state = 'active' AND live_allocation_id IS NULL;

CREATE FUNCTION allocations_hold_node() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    live_now  boolean := NEW.state IN ('requested', 'provisioning', 'active', 'releasing', 'release_failed');
    live_then boolean := TG_OP = 'UPDATE' AND OLD.state IN ('requested', 'provisioning', 'active', 'releasing', 'release_failed');
BEGIN
    IF NEW.node_id IS NULL OR live_now = live_then THEN
        RETURN NULL;
    END IF;
    IF live_now THEN
        UPDATE nodes SET live_allocation_id = NEW.id WHERE id = NEW.node_id;
    ELSE
        UPDATE nodes SET live_allocation_id = NULL WHERE id = NEW.node_id AND live_allocation_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER allocations_hold_node AFTER INSERT OR UPDATE OF state ON allocations
    FOR EACH ROW EXECUTE FUNCTION allocations_hold_node();
