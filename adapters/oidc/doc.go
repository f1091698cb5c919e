// Package oidc connects the platform to an OpenID Connect issuer (Keycloak in
// production, the built-in dev provider in adapters/devoidc, or any compliant
// issuer).
//
// It offers two adapters:
//
//   - [Verifier] implements [ports.TokenVerifier]: it checks bearer access
//     tokens (signature against the issuer's JWKS, algorithm allowlist, iss,
//     aud/azp, exp and nbf with a small leeway) and maps their claims to
//     identity.Claims. Failures are fault errors with the stable codes
//     token_missing, token_expired and token_invalid; an unreachable issuer is
//     KindUnavailable so clients retry instead of throwing their session away.
//   - [Client] implements [ports.IdentityProvider] with golang.org/x/oauth2:
//     authorization code with PKCE (S256), refresh, RFC 7009 revocation and the
//     resource-owner password grant used by the feature-flagged personal login.
//
// Both discover the issuer's endpoints lazily, on first use, and retry
// discovery until it succeeds. That is deliberate: in `gpuaas dev` the dev
// provider is mounted on the very HTTP server whose constructor needs a
// verifier, so eager discovery at construction would deadlock start-up; in
// production it means a Keycloak restart does not stop the API from booting
// (requests fail with service_unavailable until the issuer answers).
//
// Tokens, passwords and keys are never logged or put into error messages.
package oidc
