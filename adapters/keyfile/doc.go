// Package keyfile keeps the platform's root keys in local files: a KMS
// (AES-256-GCM key wrapping data keys for the encryption envelope) and an
// Ed25519 signer for node tasks. It is the embedded default; production
// swaps the KMS for adapters/awskms.
package keyfile
