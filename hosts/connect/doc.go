// Package connecthost is the agent gateway: the Connect RPC host (TLS 1.3,
// client certificates from the platform CA) that node agents enrol with,
// renew certificates through, heartbeat to, long-poll for signed tasks and
// report task results to.
package connecthost
