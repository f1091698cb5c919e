ALTER TABLE service_account_credentials DROP COLUMN last_used_at;
