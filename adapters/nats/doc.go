// Package nats is the event bus on NATS JetStream: it creates the
// platform's streams and durable consumers, publishes outbox events with
// their id as the dedupe id, consumes durable pull consumers, and can run
// nats-server in-process for `gpuaas dev` and tests.
package nats
