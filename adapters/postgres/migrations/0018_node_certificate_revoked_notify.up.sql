-- Every revocation of a node certificate is announced, so agent gateways
-- can cache "this serial is good" between calls and still refuse a revoked
-- certificate on its next call, on every replica.
CREATE FUNCTION node_certificates_notify_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('node_certificate_revoked', NEW.node_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER node_certificates_revoked AFTER UPDATE OF revoked_at ON node_certificates
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
    EXECUTE FUNCTION node_certificates_notify_revoked();

-- A retired node's certificates stop working too; announce it the same way
-- (RetireNode also revokes them, but nothing may depend on that order).
CREATE FUNCTION nodes_notify_retired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('node_certificate_revoked', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER nodes_retired AFTER UPDATE OF state ON nodes
    FOR EACH ROW WHEN (NEW.state = 'retired' AND OLD.state IS DISTINCT FROM 'retired')
    EXECUTE FUNCTION nodes_notify_retired();
