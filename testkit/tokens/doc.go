// Package tokens helps tests that need OIDC tokens.
//
//   - [NewIssuer] starts a minimal issuer (discovery + JWKS) on 127.0.0.1
//     whose [Issuer.Mint] makes valid access tokens and whose [Issuer.Forge]
//     makes the classic bad ones (expired, wrong key, alg none, HS256 with the
//     public key, …) for table tests of verifiers and auth middleware.
//   - [NewDevOIDC] runs the real dev provider (adapters/devoidc) on 127.0.0.1
//     and signs demo users in through the full authorization-code + PKCE flow
//     ([DevOIDC.SignIn]), as a browser would.
//
// The browser-less login driver itself lives in the signin sub-package so
// that commands can use it without importing testing.
package tokens
