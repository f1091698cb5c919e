-- Machine access (doc/service-accounts.md): service accounts with their
-- client-secret credentials, and personal API keys. Secrets are stored as
-- SHA-256 hashes only; every row is owned through tenant_id.

-- A service account acts through a users row of the same id (issuer
-- urn:gpuaas:service-account, which no identity provider can sign in as),
-- so allocations, SSH keys and audit rows name it like any user.
CREATE TABLE service_accounts (
    id           uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role         text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    created_by   uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);
CREATE UNIQUE INDEX service_accounts_project_name_key ON service_accounts (project_id, name)
    WHERE disabled_at IS NULL;

CREATE TABLE service_account_credentials (
    id                  uuid PRIMARY KEY,
    service_account_id  uuid NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind                text NOT NULL DEFAULT 'secret' CHECK (kind IN ('secret')),
    secret_hash         bytea NOT NULL CHECK (length(secret_hash) = 32),
    hint                text NOT NULL DEFAULT '',
    created_by          uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz,
    revoked_at          timestamptz
);
CREATE INDEX service_account_credentials_account_idx
    ON service_account_credentials (service_account_id, created_at DESC);

CREATE TABLE api_keys (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    lookup           text COLLATE "C" NOT NULL CHECK (length(lookup) = 12),
    key_hash         bytea NOT NULL CHECK (length(key_hash) = 32),
    scopes           text[] NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 4),
    spend_cap_minor  bigint NOT NULL DEFAULT 0 CHECK (spend_cap_minor >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    last_used_at     timestamptz,
    revoked_at       timestamptz,
    CONSTRAINT api_keys_lookup_key UNIQUE (lookup)
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at DESC) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX api_keys_user_name_key ON api_keys (user_id, name) WHERE revoked_at IS NULL;
