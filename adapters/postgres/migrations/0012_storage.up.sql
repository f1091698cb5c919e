-- Project storage (doc/storage.md): the index of every project's files and
-- folders, and the quota reservations of uploads in flight. Objects live in
-- S3 under "{tenant_id}/{project_id}/{path}"; the index is what lists and
-- sums them (never an S3 LIST per request).

CREATE TABLE storage_objects (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- Canonical path (core/storage): segments joined by '/', no leading or
    -- trailing slash. COLLATE "C" orders bytewise, as S3 keys are, and makes
    -- "everything below a/b" the range ['a/b/', 'a/b0').
    path         text COLLATE "C" NOT NULL CHECK (octet_length(path) BETWEEN 1 AND 950),
    parent       text COLLATE "C" NOT NULL CHECK (octet_length(parent) <= 950),
    name         text COLLATE "C" NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
    kind         text NOT NULL CHECK (kind IN ('file', 'dir')),
    size_bytes   bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    etag         text NOT NULL DEFAULT '',
    content_type text NOT NULL DEFAULT '',
    created_by   uuid NULL REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT storage_objects_dir_empty CHECK (kind = 'file' OR (size_bytes = 0 AND etag = '' AND content_type = '')),
    -- Usage (SUM of sizes, counts by kind) is an index-only scan of the key.
    CONSTRAINT storage_objects_pkey PRIMARY KEY (project_id, path) INCLUDE (size_bytes, kind)
);

-- Listing a folder is a keyset scan of its children by name.
CREATE INDEX storage_objects_children ON storage_objects (project_id, parent, name);

CREATE TABLE storage_reservations (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path         text COLLATE "C" NOT NULL CHECK (octet_length(path) BETWEEN 1 AND 950),
    bytes        bigint NOT NULL CHECK (bytes >= 0),
    user_id      uuid NULL,
    content_type text NOT NULL DEFAULT '',
    -- The store's upload id of a presigned multipart upload ('' otherwise).
    multipart_id text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL CHECK (expires_at > created_at)
);

-- The quota check sums a project's live reservations; the reconciler finds
-- the expired ones.
CREATE INDEX storage_reservations_project ON storage_reservations (project_id, expires_at) INCLUDE (bytes);
CREATE INDEX storage_reservations_expiry ON storage_reservations (expires_at);
