package postgres

import (
	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/core/fault"
)

// uniqueConstraint is how a violated unique constraint reads to a caller.
type uniqueConstraint struct {
	code    fault.Code
	message string
}

// uniqueConstraints maps the schema's unique constraints (by name, as the
// migrations spell them) to stable conflict codes. A constraint missing here
// still becomes a Conflict, only with the generic code.
var uniqueConstraints = map[string]uniqueConstraint{
	"tenants_slug_key":                {"tenant_slug_taken", "a tenant with this slug already exists"},
	"projects_tenant_name_key":        {"project_name_taken", "a project with this name already exists"},
	"projects_one_default_per_tenant": {"default_project_exists", "the tenant already has a default project"},
	"tenant_memberships_user_key":     {"already_in_tenant", "the user already belongs to a tenant"},
	"tenant_memberships_pkey":         {"already_in_tenant", "the user already belongs to a tenant"},
	"project_memberships_key":         {"already_member", "the user is already a member of this project"},
	"tenant_invitations_email_key":    {"already_invited", "this email already has a pending invitation"},
	"users_identity_key":              {"user_exists", "a user with this identity already exists"},
	"idempotency_keys_pkey":           {fault.CodeIdempotencyInFlight, "the idempotency key is in use"},
	"policies_pkey":                   {fault.CodeConflict, "the policy value already exists"},
	"platform_outbox_events_pkey":     {fault.CodeConflict, "the event already exists"},
	"allocations_one_live_per_node":   {"node_busy", "the node already holds a live allocation"},
	"nodes_name_key":                  {"node_name_taken", "a node with this name already exists"},
	"ssh_keys_user_fingerprint_key":   {"ssh_key_duplicate", "this SSH key is already registered"},
	"ssh_keys_user_name_key":          {"ssh_key_name_taken", "an SSH key with this name already exists"},

	// Payments (migration 0007).
	"payment_sessions_provider_ref_key":     {fault.CodeConflict, "the provider reference belongs to another payment session"},
	"payment_sessions_user_idempotency_key": {fault.CodeIdempotencyKeyReused, "this idempotency key was used for another checkout"},

	// Machine access (migration 0016).
	"service_accounts_project_name_key": {"service_account_name_taken", "a service account with this name already exists in the project"},
	"api_keys_user_name_key":            {"api_key_name_taken", "an API key with this name already exists"},
	"api_keys_lookup_key":               {fault.CodeConflict, "the API key already exists"},
}

// uniqueFields names the request field whose value a unique constraint
// found taken: the conflict's field, so a form shows the message at that
// input.
var uniqueFields = map[string]string{
	"projects_tenant_name_key":          "name",
	"nodes_name_key":                    "name",
	"ssh_keys_user_name_key":            "name",
	"ssh_keys_user_fingerprint_key":     "public_key",
	"service_accounts_project_name_key": "name",
	"api_keys_user_name_key":            "name",
}

// foreignKeys maps foreign-key constraints (PostgreSQL's default
// <table>_<column>_fkey names) to the resource that was missing.
var foreignKeys = map[string]string{
	"tenant_memberships_tenant_id_fkey":   "tenant",
	"tenant_memberships_user_id_fkey":     "user",
	"projects_tenant_id_fkey":             "tenant",
	"project_memberships_project_id_fkey": "project",
	"project_memberships_user_id_fkey":    "user",
	"tenant_invitations_tenant_id_fkey":   "tenant",
	"tenant_invitations_invited_by_fkey":  "user",
	"allocations_tenant_id_fkey":          "tenant",
	"allocations_project_id_fkey":         "project",
	"allocations_user_id_fkey":            "user",
	"allocations_node_id_fkey":            "node",
	"allocations_sku_id_fkey":             "sku",
	"nodes_sku_id_fkey":                   "sku",
	"ssh_keys_user_id_fkey":               "user",
	"ledger_entries_tenant_id_fkey":       "tenant",
	"ledger_entries_project_id_fkey":      "project",
	"ledger_entries_user_id_fkey":         "user",

	// Payments (migration 0007).
	"payment_sessions_tenant_id_fkey":  "tenant",
	"payment_sessions_user_id_fkey":    "user",
	"payment_customers_tenant_id_fkey": "tenant",

	// Machine access (migration 0016).
	"service_accounts_tenant_id_fkey":                     "tenant",
	"service_accounts_project_id_fkey":                    "project",
	"service_account_credentials_service_account_id_fkey": "service account",
	"api_keys_user_id_fkey":                               "user",
	"api_keys_tenant_id_fkey":                             "tenant",
	"api_keys_project_id_fkey":                            "project",
}

// canonicalID parses an id given by a caller. ok is false when it is not a
// uuid: such an id names nothing, so readers answer NotFound without a round
// trip (and without aborting the caller's transaction on a cast error).
func canonicalID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", false
	}
	return u.String(), true
}

// nullableID maps "" to SQL NULL for optional uuid columns.
func nullableID(id string) any {
	if id == "" {
		return nil
	}
	return id
}
