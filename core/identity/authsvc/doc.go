// Package authsvc holds the sign-in use cases every host shares: the OIDC
// authorization-code flow with PKCE (state and verifier kept server side,
// the state usable once), refresh, logout with its access-token deny-list,
// the personal (password) login and its policy gate, and authenticating a
// bearer token into a principal.
package authsvc
