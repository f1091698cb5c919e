// Package cache provides a bounded in-memory map for the hot paths' caches
// (verified tokens, principals, project access): a fixed number of entries,
// the oldest evicted first, safe for concurrent use. Freshness — expiry,
// invalidation generations — is the caller's, stored in the values.
package cache
