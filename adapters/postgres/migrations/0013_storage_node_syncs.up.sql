-- Storage syncs of allocations (doc/storage.md, "Files on the node"): the
-- project folder pulled into the account's home at activation, pushed back
-- at release. No foreign key to allocations: the record belongs to storage
-- and outlives nothing it needs.
CREATE TABLE storage_node_syncs (
    allocation_id    uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id          uuid NULL,
    path             text COLLATE "C" NOT NULL CHECK (octet_length(path) <= 950),
    dir              text NOT NULL CHECK (octet_length(dir) BETWEEN 1 AND 255),
    pulled_node_time bigint NOT NULL DEFAULT 0,
    pushed_at        timestamptz NULL,
    created_at       timestamptz NOT NULL
);
