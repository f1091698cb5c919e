-- Foundation: tenancy, policy, audit, outbox, idempotency, allocation ownership.
-- Ownership: tenant (the roadmap's "org") owns, project scopes, user acts.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    oidc_issuer   text NOT NULL,
    oidc_subject  text NOT NULL,
    email         text NOT NULL DEFAULT '',
    display_name  text NOT NULL DEFAULT '',
    role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_identity_key UNIQUE (oidc_issuer, oidc_subject)
);
CREATE INDEX users_email_idx ON users (lower(email));

-- MVP: a user belongs to exactly one tenant (UNIQUE(user_id)).
CREATE TABLE tenant_memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT tenant_memberships_user_key UNIQUE (user_id)
);

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_tenant_name_key UNIQUE (tenant_id, name)
);
CREATE UNIQUE INDEX projects_one_default_per_tenant ON projects (tenant_id) WHERE is_default;

CREATE TABLE project_memberships (
    project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_memberships_key UNIQUE (project_id, user_id)
);
CREATE INDEX project_memberships_user_idx ON project_memberships (user_id);

CREATE TABLE tenant_invitations (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'member')),
    invited_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_invitations_email_key UNIQUE (email),
    CONSTRAINT tenant_invitations_email_lower CHECK (email = lower(email))
);

-- Policy values: scope '' is global; a tenant id overrides for that tenant.
CREATE TABLE policies (
    scope       text NOT NULL DEFAULT '',
    key         text NOT NULL,
    value       text NOT NULL,
    updated_by  text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Append-only audit log.
CREATE TABLE audit_log (
    id              uuid PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    actor_type      text NOT NULL,
    actor_id        text NOT NULL DEFAULT '',
    tenant_id       uuid,
    project_id      uuid,
    action          text NOT NULL,
    resource_type   text NOT NULL DEFAULT '',
    resource_id     text NOT NULL DEFAULT '',
    outcome         text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    correlation_id  text NOT NULL DEFAULT '',
    source_ip       text NOT NULL DEFAULT '',
    metadata        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_time_idx ON audit_log (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX audit_log_time_idx ON audit_log (occurred_at DESC, id DESC);

CREATE FUNCTION refuse_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_mutation();

-- Transactional outbox. envelope holds the whole event.Envelope as JSON.
CREATE TABLE platform_outbox_events (
    id                 uuid PRIMARY KEY,
    subject            text NOT NULL,
    envelope           jsonb NOT NULL,
    occurred_at        timestamptz NOT NULL DEFAULT now(),
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published', 'failed')),
    retry_count        integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    last_attempted_at  timestamptz,
    last_error         text,
    published_at       timestamptz
);
CREATE INDEX platform_outbox_pending_idx ON platform_outbox_events (next_attempt_at, occurred_at)
    WHERE status = 'pending';

-- Wake relays on new rows; one notification per statement keeps it cheap.
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_pending', '');
    RETURN NULL;
END $$;
CREATE TRIGGER platform_outbox_notify AFTER INSERT ON platform_outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();

CREATE TABLE idempotency_keys (
    scope             text NOT NULL,
    key               text NOT NULL,
    fingerprint       text NOT NULL,
    status            text NOT NULL CHECK (status IN ('in_flight', 'completed')),
    response_status   integer,
    response_headers  jsonb,
    response_body     bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

-- Allocations: ownership fixed from the start (tenant and project NOT NULL).
-- The compute path adds SKUs, nodes and the placement constraint's FK.
CREATE TABLE allocations (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    project_id    uuid NOT NULL REFERENCES projects(id),
    user_id       uuid NOT NULL REFERENCES users(id),
    sku_id        text NOT NULL,
    node_id       text,
    state         text NOT NULL CHECK (state IN ('requested', 'provisioning', 'active', 'releasing',
                                                 'released', 'failed', 'release_failed')),
    price_minor   bigint NOT NULL CHECK (price_minor >= 0),
    currency      text NOT NULL,
    failure_code  text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    active_at     timestamptz,
    released_at   timestamptz
);
-- A node is never held by two live allocations.
CREATE UNIQUE INDEX allocations_one_live_per_node ON allocations (node_id)
    WHERE node_id IS NOT NULL AND state IN ('requested', 'provisioning', 'active', 'releasing', 'release_failed');
CREATE INDEX allocations_project_idx ON allocations (project_id, created_at DESC);
CREATE INDEX allocations_tenant_idx ON allocations (tenant_id, created_at DESC);
