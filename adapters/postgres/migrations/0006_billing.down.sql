-- The role is cluster-wide and other databases may use it: revoke what this
-- database granted, but leave the role itself.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM gpuaas_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM gpuaas_app;
REVOKE USAGE ON SCHEMA public FROM gpuaas_app;
DROP TRIGGER IF EXISTS ledger_entries_no_truncate ON ledger_entries;
DROP INDEX IF EXISTS ledger_entries_tenant_page_idx;
DROP INDEX IF EXISTS ledger_entries_refund_ref_idx;
DROP TABLE IF EXISTS tenant_billing_state;
DROP TABLE IF EXISTS usage_records;
