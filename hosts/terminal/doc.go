// Package terminalhost is the browser terminal's WebSocket gateway: it checks
// the Origin, takes the single-use terminal token from the WebSocket
// subprotocol or Authorization header, consumes it, and relays the browser to
// an SSH session on the allocation's node opened with a short-lived SSH user
// certificate that exists only in memory.
package terminalhost
