-- Notifications (doc/notifications.md): each user's inbox, their channel
-- preferences, the email queue, and projects' outbound webhook endpoints
-- with their deliveries and the log of every attempt.

CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    -- The live stream's event id. Rows of one user commit in seq order
    -- (Deliver takes a per-user advisory lock before inserting), so a
    -- stream resumed after seq N never misses a row below a later one.
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id    uuid NOT NULL,
    kind        text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz,
    CONSTRAINT notifications_seq_key UNIQUE (seq),
    -- One row per event and person, however often the event is delivered.
    CONSTRAINT notifications_event_user_key UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_user_seq_idx ON notifications (user_id, seq DESC);
CREATE INDEX notifications_user_unread_idx ON notifications (user_id, seq DESC) WHERE read_at IS NULL;

-- Wake live streams (pg_notify('notifications', user_id)) when a row commits.
CREATE FUNCTION notify_notification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifications', NEW.user_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER notifications_notify AFTER INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION notify_notification();

CREATE TABLE notification_preferences (
    user_id     uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    email       jsonb NOT NULL DEFAULT '{}',  -- kind → bool; a kind not named is on
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The email channel's queue: one row per inbox row that is mailed.
CREATE TABLE notification_emails (
    id               uuid PRIMARY KEY REFERENCES notifications(id) ON DELETE CASCADE,
    to_addr          text NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    message_id       text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX notification_emails_due_idx ON notification_emails (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_endpoints (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url              text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description      text NOT NULL DEFAULT '',
    event_types      text[] NOT NULL,
    status           text NOT NULL CHECK (status IN ('enabled', 'disabled')),
    disabled_reason  text NOT NULL DEFAULT '',
    failing_since    timestamptz,
    -- Signing secrets, sealed with the KMS envelope (core/envelope).
    secrets          bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_project_idx ON webhook_endpoints (project_id, created_at);
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id) WHERE status = 'enabled';

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    tenant_id         uuid NOT NULL,
    project_id        uuid NOT NULL,
    event_id          uuid NOT NULL,
    event_type        text NOT NULL,
    payload           bytea NOT NULL,  -- the exact body signed and sent
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz,
    last_status_code  integer NOT NULL DEFAULT 0,
    last_error        text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- One delivery (and one series of attempts) per endpoint and event.
    CONSTRAINT webhook_deliveries_endpoint_event_key UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL,
    status_code  integer NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',
    duration_ms  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, attempt)
);

-- Tenant balance state: when the tenant was last told its nodes will be
-- released soon (billing.auto_release_pending), once per approach.
ALTER TABLE tenant_billing_state ADD COLUMN release_warned_at timestamptz;

GRANT SELECT, INSERT, UPDATE, DELETE ON notifications, notification_preferences, notification_emails,
    webhook_endpoints, webhook_deliveries, webhook_attempts TO gpuaas_app;
