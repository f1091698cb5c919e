-- When the release of an allocation was first requested. Billing ends at
-- this moment (doc/billing.md), not when the node finished revoking the
-- account. Allocations released before this column existed keep NULL and
-- are billed to released_at, as they were.
ALTER TABLE allocations ADD COLUMN release_requested_at timestamptz;
