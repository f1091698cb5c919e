-- Minimal money ledger: append-only entries whose SUM is a tenant's balance.
-- The allocation path reads the balance; the money path extends this table
-- (payments, usage windows) through later migrations.
CREATE TABLE ledger_entries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    project_id       uuid REFERENCES projects(id),
    user_id          uuid REFERENCES users(id),
    type             text NOT NULL CHECK (type IN ('credit', 'usage_debit', 'adjustment', 'refund')),
    amount_minor     bigint NOT NULL CHECK (amount_minor <> 0),
    currency         text NOT NULL CHECK (length(currency) = 3),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    reference        text NOT NULL DEFAULT '',
    reason           text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_entries_idempotency_key_key UNIQUE (idempotency_key),
    -- Signs follow the type (core/ledger.Entry.Validate), enforced here too.
    CONSTRAINT ledger_entries_sign_check CHECK (
        (type = 'credit' AND amount_minor > 0) OR
        (type IN ('usage_debit', 'refund') AND amount_minor < 0) OR
        type = 'adjustment')
);
CREATE INDEX ledger_entries_tenant_idx ON ledger_entries (tenant_id, created_at);

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_mutation();
