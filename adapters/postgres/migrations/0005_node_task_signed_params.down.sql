ALTER TABLE node_tasks DROP COLUMN IF EXISTS signed_params;
