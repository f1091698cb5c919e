-- Who or what first asked for an allocation's release (allocation.ReleaseBy*):
-- its user, a tenant admin, an operator, an exhausted balance or its cost
-- cap. Kept with release_requested_at; the release notice says it. NULL for
-- allocations not released, and for those released before this column.
ALTER TABLE allocations ADD COLUMN release_reason text
	CHECK (release_reason IN ('user', 'tenant_admin', 'operator', 'balance_depleted', 'cost_cap_reached'));
