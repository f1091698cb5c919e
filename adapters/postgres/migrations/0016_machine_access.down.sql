DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS service_account_credentials;
DROP TABLE IF EXISTS service_accounts;
-- The users rows of service accounts stay: allocations and ledger rows name them, and no sign-in reaches them.
