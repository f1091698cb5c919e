DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries;
DROP TABLE IF EXISTS ledger_entries;
