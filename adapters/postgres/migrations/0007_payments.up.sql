-- Payments: top-up checkouts, the provider's customer per tenant, and the
-- provider events already applied (the webhook's dedupe table).
CREATE TABLE payment_sessions (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    user_id          uuid NOT NULL REFERENCES users(id),
    amount_minor     bigint NOT NULL CHECK (amount_minor > 0),
    currency         text NOT NULL CHECK (length(currency) = 3),
    provider         text NOT NULL CHECK (length(provider) BETWEEN 1 AND 32),
    -- NULL until the provider answered: the row commits before the provider
    -- is called, so a webhook always finds it.
    provider_ref     text CHECK (length(provider_ref) BETWEEN 1 AND 255),
    checkout_url     text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'initiated'
                     CHECK (status IN ('initiated', 'credited', 'failed_reconcile', 'expired')),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_sessions_provider_ref_key UNIQUE (provider_ref),
    CONSTRAINT payment_sessions_user_idempotency_key UNIQUE (user_id, idempotency_key)
);
CREATE INDEX payment_sessions_status_idx ON payment_sessions (status, created_at DESC, id DESC);
CREATE INDEX payment_sessions_created_idx ON payment_sessions (created_at DESC, id DESC);
CREATE INDEX payment_sessions_tenant_idx ON payment_sessions (tenant_id, created_at DESC);

CREATE TABLE payment_customers (
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    provider      text NOT NULL CHECK (length(provider) BETWEEN 1 AND 32),
    customer_ref  text NOT NULL CHECK (length(customer_ref) BETWEEN 1 AND 255),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider)
);

-- One row per applied provider event: the INSERT ... ON CONFLICT DO NOTHING
-- in the webhook's transaction is what makes a redelivery a no-op. Rows are
-- never updated; keep them (Stripe redelivers for up to three days).
CREATE TABLE payment_events (
    provider     text NOT NULL CHECK (length(provider) BETWEEN 1 AND 32),
    event_id     text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    type         text NOT NULL DEFAULT '',
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

CREATE TRIGGER payment_events_append_only BEFORE UPDATE OR DELETE ON payment_events
    FOR EACH ROW EXECUTE FUNCTION refuse_mutation();
