// Package redis implements the ephemeral ports (single-use tokens, rate
// limits) on Redis so that every API and gateway replica shares them.
package redis
