// Package relay moves events from the transactional outbox to the bus: it
// claims pending rows in batches, publishes them with their id as the
// dedupe id, and lets the outbox record each outcome. It depends on ports
// only; any number of relays may run at once.
package relay
