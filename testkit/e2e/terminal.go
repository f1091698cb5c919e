package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Terminal is a browser terminal as the web console opens it: a token
// minted through the API, a WebSocket to the gateway with the token in the
// subprotocol, input as binary frames.
type Terminal struct {
	// SessionID is the terminal session on the node; mint with it to resume.
	SessionID string
	// Resumed says whether this connection resumed an existing session.
	Resumed bool

	ws     *websocket.Conn
	mu     sync.Mutex
	out    bytes.Buffer
	closed *websocket.CloseError
	done   chan struct{}
	err    error
}

// TerminalRefusal is the gateway's answer when it refused the WebSocket.
type TerminalRefusal struct {
	Status int
	Code   string
	Body   string
}

func (r *TerminalRefusal) Error() string {
	return fmt.Sprintf("terminal refused: %d %s", r.Status, r.Code)
}

// OpenTerminal mints a token (resuming sessionID when not empty) and
// connects. A refusal before the upgrade is a *TerminalRefusal.
func (c *Client) OpenTerminal(ctx context.Context, allocationID, sessionID string) (*Terminal, error) {
	var tok struct {
		Token         string
		WebsocketPath string `json:"websocket_path"`
		Subprotocol   string
		SessionID     string `json:"session_id"`
		Resume        bool
	}
	var body any
	if sessionID != "" {
		body = map[string]string{"session_id": sessionID}
	}
	if err := c.Call(ctx, "POST", "/api/v1/allocations/"+allocationID+"/terminal-token", body, &tok); err != nil {
		return nil, fmt.Errorf("mint token: %w", err)
	}
	u, _ := url.Parse(c.Base)
	origin := u.Scheme + "://" + u.Host
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = tok.WebsocketPath
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, Subprotocols: []string{tok.Subprotocol, "bearer." + tok.Token}}
	ws, resp, err := d.DialContext(ctx, u.String(), http.Header{"Origin": {origin}})
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(b, &e)
			return nil, &TerminalRefusal{Status: resp.StatusCode, Code: e.Error.Code, Body: strings.TrimSpace(string(b))}
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	t := &Terminal{SessionID: tok.SessionID, Resumed: tok.Resume, ws: ws, done: make(chan struct{})}
	go t.read()
	return t, nil
}

func (t *Terminal) read() {
	defer close(t.done)
	for {
		_, msg, err := t.ws.ReadMessage()
		t.mu.Lock()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				t.closed = ce
			}
			t.err = err
			t.mu.Unlock()
			return
		}
		t.out.Write(msg)
		t.mu.Unlock()
	}
}

// Send types s.
func (t *Terminal) Send(s string) error { return t.ws.WriteMessage(websocket.BinaryMessage, []byte(s)) }

// Output is everything the terminal printed so far.
func (t *Terminal) Output() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.String()
}

// WaitFor waits until the output contains s.
func (t *Terminal) WaitFor(s string, timeout time.Duration) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(t.Output(), s) {
			return nil
		}
		select {
		case <-t.done:
			if strings.Contains(t.Output(), s) {
				return nil
			}
			return fmt.Errorf("the terminal closed (%v) before %q; output %q", t.err, s, t.Output())
		case <-deadline:
			return fmt.Errorf("no %q from the terminal within %v; output %q", s, timeout, t.Output())
		case <-tick.C:
		}
	}
}

// Closed waits for the gateway to close the connection and returns its
// close frame (nil when it ended without one).
func (t *Terminal) Closed(timeout time.Duration) (*websocket.CloseError, error) {
	select {
	case <-t.done:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.closed, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("the terminal is still open after %v", timeout)
	}
}

// Close drops the connection the way a closed tab does: no close frame.
func (t *Terminal) Close() error {
	err := t.ws.NetConn().Close()
	<-t.done
	return err
}
