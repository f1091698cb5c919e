ALTER TABLE allocations DROP COLUMN release_reason;
