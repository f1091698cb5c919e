// Package identitysvc holds the identity and tenancy use cases: sign-in with
// first-time tenant provisioning, the caller's profile, projects and their
// members. It depends on ports only.
package identitysvc
