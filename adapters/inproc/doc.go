// Package inproc implements ephemeral ports (single-use tokens, rate limits)
// in process memory. It is the embedded default for `gpuaas dev` and a
// single replica; several replicas need the Redis adapter instead.
package inproc
