-- Money path: metering (usage_records), the billing worker's per-tenant
-- state, and the application role that may only append to the ledger.

-- The application role. Roles are cluster-wide, so the migration of every
-- database in a cluster (tests create many) may race to create it: both
-- duplicate_object and unique_violation mean another migration won.
-- Creating it needs CREATEROLE (or a superuser migrator); production grants
-- it to the login role the API and workers use (GRANT gpuaas_app TO …).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gpuaas_app') THEN
        CREATE ROLE gpuaas_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

-- Usage: one record per allocation, opened when it becomes active and
-- closed when it is released (or its release fails). billed_through is how
-- far the billing worker has debited; cost accrues per second from
-- started_at at the hourly_price_minor snapshot.
CREATE TABLE usage_records (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    project_id          uuid NOT NULL REFERENCES projects(id),
    user_id             uuid NOT NULL REFERENCES users(id),
    allocation_id       uuid NOT NULL REFERENCES allocations(id),
    hourly_price_minor  bigint NOT NULL CHECK (hourly_price_minor >= 0),
    currency            text NOT NULL CHECK (length(currency) = 3),
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    billed_through      timestamptz NOT NULL,
    billed_minor        bigint NOT NULL DEFAULT 0 CHECK (billed_minor >= 0),
    state               text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_records_allocation_key UNIQUE (allocation_id),
    CONSTRAINT usage_records_open_iff_no_end CHECK ((state = 'open') = (ended_at IS NULL)),
    CONSTRAINT usage_records_billed_check CHECK (
        billed_through >= started_at AND (ended_at IS NULL OR billed_through <= ended_at))
);
-- What the billing worker scans: open records, and closed ones not yet
-- billed up to their end.
CREATE INDEX usage_records_due_idx ON usage_records (billed_through)
    WHERE ended_at IS NULL OR billed_through < ended_at;
CREATE INDEX usage_records_tenant_idx ON usage_records (tenant_id, started_at DESC, id DESC);

-- The billing worker's view of each tenant's balance: ok | low | depleted,
-- so warnings fire once per transition (and again only after 24 h low).
CREATE TABLE tenant_billing_state (
    tenant_id        uuid PRIMARY KEY REFERENCES tenants(id),
    state            text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'low', 'depleted')),
    last_warned_at   timestamptz,
    changed_at       timestamptz NOT NULL DEFAULT now()
);

-- Refunds name the credit they return (reference = credit entry id).
CREATE INDEX ledger_entries_refund_ref_idx ON ledger_entries (reference) WHERE type = 'refund';
CREATE INDEX ledger_entries_tenant_page_idx ON ledger_entries (tenant_id, created_at DESC, id DESC);

-- TRUNCATE skips row triggers; refuse it with a statement trigger.
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_mutation();

-- The application role reads and writes the platform's tables but may only
-- append to the ledger (and the audit log): the database, not only the
-- code, refuses to rewrite money history.
GRANT USAGE ON SCHEMA public TO gpuaas_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO gpuaas_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO gpuaas_app;
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entries, audit_log FROM gpuaas_app;
