// Package terminalsvc implements the browser terminal's use cases: minting a
// single-use terminal token for an active allocation and consuming it when
// the WebSocket gateway opens the session.
package terminalsvc
