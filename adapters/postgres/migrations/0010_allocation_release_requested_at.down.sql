ALTER TABLE allocations DROP COLUMN release_requested_at;
