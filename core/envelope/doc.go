// Package envelope seals platform secrets at rest: each secret gets its own
// AES-256-GCM data key, wrapped by a KMS, and a versioned binary envelope
// bound to a context string so one secret's envelope cannot stand in for
// another's.
package envelope
