-- When a service account's client secret last bought a token (POST
-- /auth/service-token), so its admins can tell a secret still in use from a
-- forgotten one before they revoke it. NULL until first used (and for uses
-- before this column).
ALTER TABLE service_account_credentials ADD COLUMN last_used_at timestamptz;
