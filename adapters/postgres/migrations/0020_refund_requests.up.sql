-- Provider refunds (doc/payments.md#refunds): one row per operator request,
-- moved requested → submitted → succeeded / failed. The ledger refund is
-- posted in the transaction that moves a row to succeeded (key
-- refund:<id>), whichever of the provider's answer and its webhook arrives
-- first.
CREATE TABLE refund_requests (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    session_id       uuid NOT NULL REFERENCES payment_sessions(id),
    credit_entry_id  uuid NOT NULL,
    amount_minor     bigint NOT NULL CHECK (amount_minor > 0),
    currency         text NOT NULL,
    reason           text NOT NULL,
    requested_by     text NOT NULL,
    idempotency_key  text NOT NULL,
    provider         text NOT NULL,
    provider_ref     text,
    status           text NOT NULL CHECK (status IN ('requested', 'submitted', 'succeeded', 'failed')),
    failure_reason   text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refund_requests_tenant_key UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT refund_requests_provider_ref_key UNIQUE (provider, provider_ref)
);
CREATE INDEX refund_requests_credit_idx ON refund_requests (credit_entry_id) WHERE status IN ('requested', 'submitted');
CREATE INDEX refund_requests_time_idx ON refund_requests (created_at DESC, id DESC);

GRANT SELECT, INSERT, UPDATE ON refund_requests TO gpuaas_app;
