-- Compute path: SKUs, nodes and their enrolment, node tasks, SSH keys,
-- placement of allocations on nodes, encrypted platform secrets.

CREATE TABLE skus (
    id                  text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9.-]{1,62}$'),
    name                text NOT NULL,
    gpu_model           text NOT NULL,
    gpu_count           integer NOT NULL CHECK (gpu_count > 0),
    gpu_memory_gib      integer NOT NULL CHECK (gpu_memory_gib > 0),
    cpu_cores           integer NOT NULL CHECK (cpu_cores > 0),
    memory_gib          integer NOT NULL CHECK (memory_gib > 0),
    hourly_price_minor  bigint NOT NULL CHECK (hourly_price_minor >= 0), -- whole node, per hour
    currency            text NOT NULL DEFAULT 'usd',
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- The seeded catalogue (prices in cents per node-hour).
INSERT INTO skus (id, name, gpu_model, gpu_count, gpu_memory_gib, cpu_cores, memory_gib, hourly_price_minor) VALUES
    ('h100-80g-x8', '8× H100 80 GB SXM', 'NVIDIA H100 80GB HBM3', 8, 80, 192, 2048, 2392),
    ('h100-80g-x1', '1× H100 80 GB', 'NVIDIA H100 80GB HBM3', 1, 80, 24, 256, 299),
    ('a100-80g-x8', '8× A100 80 GB SXM', 'NVIDIA A100-SXM4-80GB', 8, 80, 128, 1024, 1432),
    ('l40s-48g-x4', '4× L40S 48 GB', 'NVIDIA L40S', 4, 48, 64, 512, 516);

CREATE TABLE nodes (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL,
    sku_id             text NOT NULL REFERENCES skus(id),
    state              text NOT NULL CHECK (state IN ('enrolling', 'active', 'offline', 'maintenance', 'retired')),
    ssh_host           text NOT NULL,
    ssh_port           integer NOT NULL CHECK (ssh_port BETWEEN 1 AND 65535),
    agent_version      text NOT NULL DEFAULT '',
    gpu_inventory      jsonb NOT NULL DEFAULT '[]',
    health             jsonb NOT NULL DEFAULT '{}',
    last_heartbeat_at  timestamptz,
    task_seq           bigint NOT NULL DEFAULT 0,   -- last sequence number issued to this node
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    retired_at         timestamptz,
    CONSTRAINT nodes_name_key UNIQUE (name)
);
CREATE INDEX nodes_sku_state_idx ON nodes (sku_id, state);

-- One-time bootstrap tokens, stored as SHA-256 hashes.
CREATE TABLE node_bootstrap_tokens (
    token_hash   bytea PRIMARY KEY,
    node_id      uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX node_bootstrap_tokens_node_idx ON node_bootstrap_tokens (node_id);

-- Client certificates issued to node agents.
CREATE TABLE node_certificates (
    serial      text PRIMARY KEY,
    node_id     uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    not_after   timestamptz NOT NULL,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX node_certificates_node_idx ON node_certificates (node_id);

-- Work for node agents. seq is per node and strictly increasing: the agent
-- refuses a sequence number it has already seen (replay).
CREATE TABLE node_tasks (
    id                uuid PRIMARY KEY,
    node_id           uuid NOT NULL REFERENCES nodes(id),
    seq               bigint NOT NULL,
    type              text NOT NULL,
    params            jsonb NOT NULL,
    allocation_id     uuid,
    state             text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'leased', 'succeeded', 'failed', 'expired')),
    issued_at         timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    key_id            text NOT NULL,
    signature         bytea NOT NULL,
    lease_expires_at  timestamptz,
    attempts          integer NOT NULL DEFAULT 0,
    result            jsonb,
    error_code        text NOT NULL DEFAULT '',
    error_message     text NOT NULL DEFAULT '',
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT node_tasks_node_seq_key UNIQUE (node_id, seq)
);
CREATE INDEX node_tasks_pending_idx ON node_tasks (node_id, seq) WHERE state IN ('queued', 'leased');
CREATE INDEX node_tasks_allocation_idx ON node_tasks (allocation_id);

CREATE FUNCTION notify_node_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('node_tasks', NEW.node_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER node_tasks_notify AFTER INSERT ON node_tasks
    FOR EACH ROW EXECUTE FUNCTION notify_node_task();

CREATE FUNCTION notify_node_task_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IN ('succeeded', 'failed', 'expired') AND OLD.state IS DISTINCT FROM NEW.state THEN
        PERFORM pg_notify('node_task_done', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER node_tasks_done_notify AFTER UPDATE ON node_tasks
    FOR EACH ROW EXECUTE FUNCTION notify_node_task_done();

CREATE TABLE ssh_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    public_key   text NOT NULL,
    fingerprint  text NOT NULL,
    key_type     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ssh_keys_user_fingerprint_key UNIQUE (user_id, fingerprint),
    CONSTRAINT ssh_keys_user_name_key UNIQUE (user_id, name)
);

-- Placement: allocations name their node by id, and how to reach it.
ALTER TABLE allocations ALTER COLUMN node_id TYPE uuid USING node_id::uuid;
ALTER TABLE allocations ADD CONSTRAINT allocations_node_id_fkey FOREIGN KEY (node_id) REFERENCES nodes(id);
ALTER TABLE allocations ADD CONSTRAINT allocations_sku_id_fkey FOREIGN KEY (sku_id) REFERENCES skus(id);
ALTER TABLE allocations ADD COLUMN ssh_user text NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN gpu_count integer NOT NULL DEFAULT 0;
CREATE INDEX allocations_user_live_idx ON allocations (user_id)
    WHERE state IN ('requested', 'provisioning', 'active', 'releasing', 'release_failed');
CREATE INDEX allocations_state_idx ON allocations (state, updated_at);

-- Platform secrets (CA keys, signing keys, node metadata), encrypted with
-- the versioned envelope: never plaintext at rest.
CREATE TABLE platform_secrets (
    name        text PRIMARY KEY,
    envelope    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
