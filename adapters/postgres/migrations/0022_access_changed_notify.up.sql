-- Every change of what authenticating a request or deciding its access to a
-- project reads is announced on access_changed, so API replicas can cache
-- verified tokens' principals, project access and machine credentials and
-- still refuse, on the next request, a suspended user, a removed member, a
-- revoked key or credential (doc/performance.md, doc/security.md).
-- Statement-level where any change matters; Postgres folds repeats of one
-- notification within a transaction into one.
CREATE FUNCTION notify_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('access_changed', '');
    RETURN NULL;
END
$$;

-- A user's status and what a principal shows of them; not a sign-in that
-- changed nothing (UpsertByIdentity rewrites the row) or updated_at alone.
CREATE TRIGGER users_access_changed AFTER UPDATE ON users FOR EACH ROW
    WHEN ((OLD.status, OLD.role, OLD.email, OLD.display_name, OLD.oidc_issuer, OLD.oidc_subject)
        IS DISTINCT FROM (NEW.status, NEW.role, NEW.email, NEW.display_name, NEW.oidc_issuer, NEW.oidc_subject))
    EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER users_access_deleted AFTER DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();

CREATE TRIGGER tenant_memberships_access_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_memberships
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER project_memberships_access_changed AFTER INSERT OR UPDATE OR DELETE ON project_memberships
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER projects_access_changed AFTER UPDATE OR DELETE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();

CREATE TRIGGER service_accounts_access_changed AFTER UPDATE OR DELETE ON service_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER service_account_credentials_access_changed AFTER UPDATE OR DELETE ON service_account_credentials
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();

-- Not the minute-by-minute last_used_at.
CREATE TRIGGER api_keys_access_changed AFTER UPDATE ON api_keys FOR EACH ROW
    WHEN ((OLD.revoked_at, OLD.expires_at, OLD.scopes, OLD.project_id, OLD.user_id, OLD.key_hash, OLD.spend_cap_minor)
        IS DISTINCT FROM (NEW.revoked_at, NEW.expires_at, NEW.scopes, NEW.project_id, NEW.user_id, NEW.key_hash, NEW.spend_cap_minor))
    EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER api_keys_access_deleted AFTER DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
