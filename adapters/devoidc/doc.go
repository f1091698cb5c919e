// Package devoidc is the built-in OpenID Connect provider that `gpuaas dev`
// and tests use instead of Keycloak. It runs in-process, keeps its state in
// memory (and its sign-in sessions in Config.StateFile when set: `gpuaas dev`
// keeps them and the signing key from [LoadOrCreateKey] in its data dir, so a
// restart signs nobody out) and knows a handful of demo users with
// documented passwords, so it is for development only: [Serve] refuses to
// listen on anything but a loopback address.
//
// It issues the same kind of tokens Keycloak does (RS256/ES256/EdDSA JWT
// access tokens with iss, sub, aud = azp = client id, exp, nbf, iat, email,
// name, preferred_username and realm_access.roles), so the production
// verifier in adapters/oidc is exercised unchanged.
//
// Endpoints, relative to the issuer URL:
//
//	GET  /.well-known/openid-configuration  discovery
//	GET  /jwks                              public keys
//	GET  /authorize                         code flow; PKCE S256 required; renders the login page
//	POST /login                             login form (fields below)
//	POST /token                             authorization_code, refresh_token (rotating), password
//	POST /revoke                            RFC 7009 revocation of refresh tokens
//	GET  /end_session                       RP-initiated logout (id_token_hint, post_logout_redirect_uri, state)
//
// The login form posts request_id (hidden, from the page), username and
// password; or request_id and pick=<username> when a demo-user button is
// clicked (one-click sign-in, disabled by Config.RequirePassword). A
// non-empty username always means a password sign-in.
//
// Why not zitadel/oidc's op package: op does not implement the
// resource-owner password grant the personal-login flag needs, its Storage
// interface is two dozen methods for a provider with one client and three
// users, and it pulls in dependencies the module does not otherwise need. The
// protocol surface here is small and covered end to end by tests that use
// the production verifier and client.
package devoidc
