ALTER TABLE node_tasks DROP COLUMN IF EXISTS trace_parent;
