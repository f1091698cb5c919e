DROP TABLE IF EXISTS storage_node_syncs;
