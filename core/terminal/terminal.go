package terminal

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// TokenBytes is the entropy of a terminal token: 256 bits, so guessing one
// within its lifetime is out of reach even at any plausible request rate.
const TokenBytes = 32

// TokenTTL is how long a minted token may wait to be used. It is short
// because the token is a bearer credential for a shell: the browser mints it
// right before opening the WebSocket.
const TokenTTL = 300 * time.Second

// tokenLen is the length of the base64url (unpadded) form of a token.
var tokenLen = base64.RawURLEncoding.EncodedLen(TokenBytes)

// The stable codes of terminal refusals. Clients switch on them.
const (
	// CodeAllocationNotActive: a terminal is only for an active allocation.
	CodeAllocationNotActive fault.Code = "allocation_not_active"
	// CodeTokenInvalid: the token is unknown, already used, expired or
	// malformed. One code for all of them so a caller learns nothing about
	// which tokens exist.
	CodeTokenInvalid fault.Code = "terminal_token_invalid"
	// CodeTokenMismatch: the token was minted for another allocation. It is
	// consumed anyway, so a token shown to the wrong endpoint is burnt.
	CodeTokenMismatch fault.Code = "terminal_token_mismatch"
	// CodeTokenInQuery: the token arrived in the URL, where proxies and
	// browser history would keep it. Refused without consuming it.
	CodeTokenInQuery fault.Code = "token_in_query"
	// CodeOriginNotAllowed: the WebSocket came from a page the platform does
	// not serve (cross-site WebSocket hijacking).
	CodeOriginNotAllowed fault.Code = "origin_not_allowed"
	// CodeNotOwner: only the user who requested the allocation may open a
	// shell as its account.
	CodeNotOwner fault.Code = "terminal_not_owner"
)

// ErrTokenInvalid is the refusal for an unknown, used, expired or malformed
// token.
func ErrTokenInvalid() *fault.Error {
	return fault.Unauthenticated(CodeTokenInvalid, "the terminal token is invalid, expired or already used")
}

// ErrTokenMismatch is the refusal for a token of another allocation.
func ErrTokenMismatch() *fault.Error {
	return &fault.Error{Kind: fault.KindForbidden, Code: CodeTokenMismatch,
		Message: "the terminal token was issued for another allocation"}
}

// NewToken draws a fresh token from r (crypto/rand in production) and
// returns it in its base64url form, the only form that leaves the process.
func NewToken(r io.Reader) (string, error) {
	var b [TokenBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fault.Internal(fmt.Errorf("terminal: draw token: %w", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// WellFormed reports whether s has the shape of a token. Malformed values
// are refused without a store round trip.
func WellFormed(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == TokenBytes
}

// StoreKey is the key a token's grant is stored under: a SHA-256 of the
// token, so a dump of the token store yields nothing usable. A plain hash is
// enough: the token has 256 bits of entropy, nothing to brute-force.
func StoreKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return "terminal:" + hex.EncodeToString(h[:])
}

// Grant is what a token stands for: who may open which shell on which node,
// until when. It is stored as JSON under StoreKey(token).
type Grant struct {
	UserID       string    `json:"user_id"`
	TenantID     string    `json:"tenant_id"`
	ProjectID    string    `json:"project_id"`
	AllocationID string    `json:"allocation_id"`
	NodeID       string    `json:"node_id"`
	SSHUser      string    `json:"ssh_user"`
	ExpiresAt    time.Time `json:"expires_at"`
	// SessionID names the terminal session on the node; Resume says whether
	// the token resumes it (else it starts it).
	SessionID string `json:"session_id"`
	Resume    bool   `json:"resume,omitempty"`
}

// How a relayed browser connection to a terminal session ended: the
// audit's metadata.end and the gateway's duration metric's label. The
// session itself outlives the connection where the node keeps it for a
// resume (node_lost, browser_left, gateway_shutdown).
const (
	EndExited          = "exited"           // the shell exited: the session is over
	EndEndedByNode     = "ended_by_node"    // the node ended it (a release, the node stopping)
	EndTakenOver       = "taken_over"       // the session was resumed from another browser
	EndNodeLost        = "node_lost"        // the connection to the node broke
	EndBrowserLeft     = "browser_left"     // the browser closed the connection or vanished
	EndSuspended       = "suspended"        // the user was suspended
	EndGatewayShutdown = "gateway_shutdown" // the gateway stopped
)

// Ends lists every end reason.
var Ends = []string{EndExited, EndEndedByNode, EndTakenOver, EndNodeLost, EndBrowserLeft, EndSuspended, EndGatewayShutdown}

// ConnectionEnd is how long one relayed browser connection lasted, what it
// carried, and how it ended. Detail is the node's reason when the node
// ended it ("exit status 0", "session_taken_over: …"); never terminal
// content.
type ConnectionEnd struct {
	End            string
	Detail         string
	Duration       time.Duration
	BytesToNode    int64 // keystrokes and pasted input
	BytesToBrowser int64 // output
}

// Validate checks that a grant names everything a session needs.
func (g Grant) Validate() error {
	switch {
	case g.UserID == "", g.TenantID == "", g.AllocationID == "":
		return fault.Internal(fmt.Errorf("terminal: grant without user, tenant or allocation"))
	case g.NodeID == "":
		return fault.Conflict(CodeAllocationNotActive, "the allocation has no node")
	case g.SSHUser == "":
		return fault.Internal(fmt.Errorf("terminal: grant without ssh user"))
	case g.ExpiresAt.IsZero():
		return fault.Internal(fmt.Errorf("terminal: grant without expiry"))
	case !ValidSessionID(g.SessionID):
		return fault.Internal(fmt.Errorf("terminal: grant without a valid session id"))
	}
	return nil
}

// Encode is the stored form of the grant.
func (g Grant) Encode() ([]byte, error) {
	b, err := json.Marshal(g)
	if err != nil {
		return nil, fault.Internal(err)
	}
	return b, nil
}

// DecodeGrant parses a stored grant. A value that does not parse is treated
// as an invalid token (the store held something that is not ours).
func DecodeGrant(b []byte) (Grant, error) {
	var g Grant
	if err := json.Unmarshal(b, &g); err != nil || g.Validate() != nil {
		return Grant{}, ErrTokenInvalid()
	}
	return g, nil
}

// Check decides whether a consumed grant opens a terminal on allocationID
// at now. The store's TTL already drops expired tokens; the expiry is
// checked again here so a store with a coarse TTL cannot stretch it.
func (g Grant) Check(allocationID string, now time.Time) error {
	if !now.Before(g.ExpiresAt) {
		return ErrTokenInvalid()
	}
	if g.AllocationID != allocationID {
		return ErrTokenMismatch()
	}
	return nil
}

// Subprotocol is the WebSocket subprotocol of the terminal. A browser
// offers it together with BearerSubprotocolPrefix+token; the gateway echoes
// only Subprotocol, so the token never comes back in a response header.
const Subprotocol = "gpuaas.terminal.v1"

// BearerSubprotocolPrefix marks the subprotocol entry that carries the
// token (browsers cannot set Authorization on a WebSocket).
const BearerSubprotocolPrefix = "bearer."

// WebSocketPath is where the gateway serves the terminal of an allocation.
func WebSocketPath(allocationID string) string { return "/ws/terminal/" + allocationID }

// Limits on the terminal size a browser may ask for. A real terminal is far
// below them; they stop a hostile client from asking sshd for absurd sizes.
const (
	MaxCols = 1000
	MaxRows = 500
)

// Control is a JSON control frame from the browser. Only "resize" exists.
type Control struct {
	Type string `json:"type"`
	Cols int    `json:"cols"`
	Rows int    `json:"rows"`
}

// ParseControl decodes and checks a control frame.
func ParseControl(b []byte) (Control, error) {
	var c Control
	if err := json.Unmarshal(b, &c); err != nil {
		return Control{}, fault.Invalid("frame", "control frame is not valid JSON")
	}
	switch c.Type {
	case "resize":
		if c.Cols < 1 || c.Cols > MaxCols || c.Rows < 1 || c.Rows > MaxRows {
			return Control{}, fault.Invalid("frame", fmt.Sprintf("resize needs 1..%d cols and 1..%d rows", MaxCols, MaxRows))
		}
		return c, nil
	default:
		return Control{}, fault.Invalid("frame.type", "unknown control frame type")
	}
}
