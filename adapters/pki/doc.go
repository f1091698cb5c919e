// Package pki is the platform's built-in certificate authorities: an X.509
// CA (root + rotating intermediate) that issues node agents their
// short-lived mTLS client certificates and the Connect host its server
// certificate, and an SSH user CA that signs the browser terminal's
// short-lived SSH certificates. Every CA private key is stored sealed with
// core/envelope in ports.SecretStore, never in plaintext.
package pki
