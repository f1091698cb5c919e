// Package sandbox is the node agent's executor for development and tests:
// an embedded SSH server on a loopback port with per-allocation accounts
// that get real shells in private home directories under the agent's state
// directory. It isolates accounts from each other only by bookkeeping —
// shells run as the agent's own OS user — so it is never for real hosts.
package sandbox
