package terminalhost_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	terminalhost "github.com/gpuaas/gpuaas/hosts/terminal"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

const consoleOrigin = "https://console.gpuaas.test"

// allocations and nodes serve the two reads the terminal makes. Unused
// methods panic through the nil embedded interface.
type allocations struct {
	ports.AllocationStore
	mu   sync.Mutex
	byID map[string]allocation.Allocation
}

func (s *allocations) put(a allocation.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[a.ID] = a
}

func (s *allocations) Get(_ context.Context, tenantID, id string) (allocation.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok || (tenantID != "" && a.TenantID != tenantID) {
		return allocation.Allocation{}, fault.NotFound("allocation", id)
	}
	return a, nil
}

type nodes struct {
	ports.NodeStore
	mu   sync.Mutex
	byID map[string]inventory.Node
}

// setHostKey records the host key the node's agent "reported".
func (s *nodes) setHostKey(id, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.byID[id]
	n.SSHHostKey = key
	s.byID[id] = n
}

func (s *nodes) GetNode(_ context.Context, id string) (inventory.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.byID[id]
	if !ok {
		return inventory.Node{}, fault.NotFound("node", id)
	}
	return n, nil
}

// rig is a gateway in front of a test SSH server, with the real terminal
// use cases, the in-process token store on a fake clock, and the Postgres
// audit log.
type rig struct {
	gw     *terminalhost.Server
	svc    *terminalsvc.Service
	sshd   *sshd
	ca     *testCA
	hostCA ssh.Signer
	clock  *fakes.Clock
	audit  ports.AuditLog
	allocs *allocations
	nodes  *nodes
	owner  identity.Principal
	alloc  allocation.Allocation // active, on the test node
	other  allocation.Allocation // active, the owner's too, another node
	url    string
}

type rigOption func(*terminalhost.Config)

// newRig's node presents a host certificate from r.hostCA.
func newRig(t testing.TB, opts ...rigOption) *rig { return newRigHost(t, true, opts...) }

// newRigHost is newRig; without withHostCA the node presents a plain host
// key (r.sshd.hostKey) and its inventory entry has none until a test sets it.
func newRigHost(t testing.TB, withHostCA bool, opts ...rigOption) *rig {
	t.Helper()
	db := services.Postgres(t)
	r := &rig{ca: newTestCA(t), clock: fakes.NewClock(time.Time{}), audit: postgres.NewAuditLog(db),
		allocs: &allocations{byID: map[string]allocation.Allocation{}}}
	r.hostCA = newTestCA(t).signer
	if withHostCA {
		r.sshd = startSSHD(t, r.ca.signer.PublicKey(), r.hostCA, "127.0.0.1")
	} else {
		r.sshd = startSSHD(t, r.ca.signer.PublicKey(), nil, "127.0.0.1")
	}
	host, portS, _ := net.SplitHostPort(r.sshd.addr)
	port, _ := strconv.Atoi(portS)
	node := inventory.Node{ID: uuid.NewString(), State: inventory.NodeActive, SSHHost: host, SSHPort: port}
	ns := &nodes{byID: map[string]inventory.Node{node.ID: node}}
	r.nodes = ns

	r.owner = identity.Principal{User: identity.User{ID: uuid.NewString()}, TenantID: uuid.NewString()}
	mk := func(nodeID string) allocation.Allocation {
		a := allocation.Allocation{ID: uuid.NewString(), TenantID: r.owner.TenantID, ProjectID: uuid.NewString(),
			UserID: r.owner.User.ID, NodeID: nodeID, State: allocation.Active}
		r.allocs.put(a)
		return a
	}
	r.alloc = mk(node.ID)
	r.other = mk(node.ID)

	svc, err := terminalsvc.New(terminalsvc.Deps{Allocations: r.allocs, Tokens: inproc.NewTokenStore(r.clock),
		Audit: r.audit, Clock: r.clock, IDs: &fakes.IDs{}})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	policy, err := terminalhost.HostCertificateAuthority(r.hostCA.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg := terminalhost.Config{Addr: "127.0.0.1:0", AllowedOrigins: []string{consoleOrigin}, HostKeys: policy,
		DialTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := terminalhost.New(cfg, terminalhost.Deps{Terminal: svc, Nodes: ns, CA: r.ca,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	r.gw = gw
	r.url = "ws://" + gw.Addr() + "/ws/terminal/"
	return r
}

func (r *rig) mint(t testing.TB, a allocation.Allocation) string {
	t.Helper()
	return r.mintSession(t, a, "").Token
}

// mintSession mints a token that resumes sessionID ("" for a new session).
func (r *rig) mintSession(t testing.TB, a allocation.Allocation, sessionID string) terminalsvc.Minted {
	t.Helper()
	m, err := r.svc.Mint(context.Background(), r.owner, "", a.ID, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// openToken connects with a minted token.
func (r *rig) openToken(t testing.TB, a allocation.Allocation, token string) *websocket.Conn {
	t.Helper()
	ws, resp, err := subprotocolDialer(token).Dial(r.url+a.ID, browserHeader())
	if err != nil {
		t.Fatalf("open terminal: %v (%s)", err, respCode(resp))
	}
	return ws
}

func subprotocolDialer(token string) *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 10 * time.Second,
		Subprotocols: []string{terminalhost.Subprotocol, terminalhost.BearerSubprotocolPrefix + token}}
}

func browserHeader() http.Header { return http.Header{"Origin": {consoleOrigin}} }

// open connects like the web console does.
func (r *rig) open(t testing.TB, a allocation.Allocation) *websocket.Conn {
	t.Helper()
	ws, resp, err := subprotocolDialer(r.mint(t, a)).Dial(r.url+a.ID, browserHeader())
	if err != nil {
		t.Fatalf("open terminal: %v (%s)", err, respCode(resp))
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != terminalhost.Subprotocol {
		t.Fatalf("echoed subprotocol %q, want only %q", got, terminalhost.Subprotocol)
	}
	return ws
}

func respCode(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return body.Error.Code
}

// readUntil reads frames until the output contains want.
func readUntil(t testing.TB, ws *websocket.Conn, want string) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	var out bytes.Buffer
	for !strings.Contains(out.String(), want) {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v; output so far %q", want, err, out.String())
		}
		out.Write(b)
	}
	return out.String()
}

func send(t testing.TB, ws *websocket.Conn, mt int, s string) {
	t.Helper()
	if err := ws.WriteMessage(mt, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// closeOf reads until the connection ends and returns its close error.
func closeOf(t testing.TB, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
			return ce
		}
	}
}

func TestTerminalEndToEnd(t *testing.T) {
	r := newRig(t)
	ws := r.open(t, r.alloc)
	defer ws.Close()

	// The command line is echoed as typed (h''i); only execution prints hi.
	send(t, ws, websocket.BinaryMessage, "echo h''i\n")
	out := readUntil(t, ws, "hi\r\n")
	if !strings.Contains(out, "echo h''i") {
		t.Fatalf("no echo of the command in %q", out)
	}

	send(t, ws, websocket.TextMessage, `{"type":"resize","cols":132,"rows":43}`)
	send(t, ws, websocket.BinaryMessage, "stty size\n")
	readUntil(t, ws, "43 132")

	// Text frames that are not control frames are input too.
	send(t, ws, websocket.TextMessage, "echo te''xt\n")
	readUntil(t, ws, "text\r\n")

	send(t, ws, websocket.BinaryMessage, "exit 3\n")
	ce := closeOf(t, ws)
	if ce.Code != websocket.CloseNormalClosure || ce.Text != "exit status 3" {
		t.Fatalf("close %d %q, want 1000 \"exit status 3\"", ce.Code, ce.Text)
	}
	if n := r.sshd.dials.Load(); n != 1 {
		t.Fatalf("%d dials, want 1", n)
	}
	r.ca.mu.Lock()
	cert := r.ca.last
	r.ca.mu.Unlock()
	if cert == nil || len(cert.ValidPrincipals) != 1 || cert.ValidPrincipals[0] != nodetask.UsernameFor(r.alloc.ID) {
		t.Fatalf("certificate principals %v, want the allocation's account", cert.ValidPrincipals)
	}
	if ttl := time.Duration(cert.ValidBefore-uint64(time.Now().Unix())) * time.Second; ttl > terminalhost.DefaultCertTTL {
		t.Fatalf("certificate lives %v, want at most %v", ttl, terminalhost.DefaultCertTTL)
	}
	evs, _, err := r.audit.List(context.Background(), audit.Filter{Action: terminalsvc.ActionConsume})
	if err != nil || len(evs) != 1 || evs[0].Outcome != audit.Success {
		t.Fatalf("consume audit: %+v, %v", evs, err)
	}
	// The connection's end is audited too, under the same session id:
	// how it ended, how long it lasted, the bytes each way.
	closed := r.closeRow(t)
	m := closed.Metadata
	if closed.ActorID != r.alloc.UserID || closed.Outcome != audit.Success || m["end"] != terminal.EndExited ||
		m["detail"] != "exit status 3" || m["session_id"] != evs[0].Metadata["session_id"] || m["node_id"] != r.alloc.NodeID {
		t.Fatalf("close audit: %+v", closed)
	}
	if n, _ := m["bytes_to_node"].(float64); n < float64(len("stty size\nexit 3\n")) {
		t.Fatalf("close audit: bytes_to_node %v", m["bytes_to_node"])
	}
	if n, _ := m["bytes_to_browser"].(float64); n < float64(len("43 132")) {
		t.Fatalf("close audit: bytes_to_browser %v", m["bytes_to_browser"])
	}
	if d, ok := m["duration_ms"].(float64); !ok || d < 0 {
		t.Fatalf("close audit: duration_ms %v", m["duration_ms"])
	}
}

// closeRow waits for the one terminal.connection_close row (the gateway
// writes it after the browser has its close frame).
func (r *rig) closeRow(t testing.TB) audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, _, err := r.audit.List(context.Background(), audit.Filter{Action: terminalsvc.ActionClose})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 1 {
			t.Fatalf("%d close rows, want 1: %+v", len(evs), evs)
		}
		if len(evs) == 1 {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection's end was not audited")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTerminalAuthorizationHeader(t *testing.T) {
	r := newRig(t)
	h := browserHeader()
	h.Set("Authorization", "Bearer "+r.mint(t, r.alloc))
	ws, resp, err := (&websocket.Dialer{HandshakeTimeout: 10 * time.Second}).Dial(r.url+r.alloc.ID, h)
	if err != nil {
		t.Fatalf("open: %v (%s)", err, respCode(resp))
	}
	defer ws.Close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "" {
		t.Fatalf("echoed subprotocol %q to a client that offered none", got)
	}
	send(t, ws, websocket.BinaryMessage, "echo o''k\n")
	readUntil(t, ws, "ok\r\n")
}

// TestResumeAfterTheBrowserLeft: a browser that goes away mid-command
// leaves the session on the node; a token for the same session id resumes
// it, replaying what the command printed meanwhile.
func TestResumeAfterTheBrowserLeft(t *testing.T) {
	r := newRig(t)
	m := r.mintSession(t, r.alloc, "")
	if m.Resume || m.SessionID == "" {
		t.Fatalf("first token %+v; want a new session with an id", m)
	}
	ws := r.openToken(t, r.alloc, m.Token)
	send(t, ws, websocket.BinaryMessage, "echo $$ > /dev/null; sleep 1; echo la''ter-$((6*7))\n")
	ws.Close() // mid-command
	select {
	case <-r.sshd.disconnects:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway kept the SSH connection after the browser went away")
	}
	if n := len(r.sshd.terms.Sessions("")); n != 1 {
		t.Fatalf("%d sessions on the node; want the detached one", n)
	}
	again := r.mintSession(t, r.alloc, m.SessionID)
	if !again.Resume || again.SessionID != m.SessionID {
		t.Fatalf("resume token %+v", again)
	}
	ws2 := r.openToken(t, r.alloc, again.Token)
	defer ws2.Close()
	readUntil(t, ws2, "later-42")
	send(t, ws2, websocket.BinaryMessage, "echo a''gain\n")
	readUntil(t, ws2, "again\r\n")
}

// TestResumeOfAnEndedSession: once the reconnect window passed the shell is
// gone and a resume is refused before the upgrade.
func TestResumeOfAnEndedSession(t *testing.T) {
	r := newRig(t)
	r.sshd.policy = nodetask.SessionPolicy{ReconnectWindowSeconds: 1}
	m := r.mintSession(t, r.alloc, "")
	ws := r.openToken(t, r.alloc, m.Token)
	send(t, ws, websocket.BinaryMessage, "echo u''p\n")
	readUntil(t, ws, "up\r\n")
	pid := r.sshd.terms.Sessions("")[0].PID
	ws.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.sshd.terms.Sessions("")) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the detached session outlived its window")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("the shell %d survived the window", pid)
	}
	_, resp, err := subprotocolDialer(r.mintSession(t, r.alloc, m.SessionID).Token).Dial(r.url+r.alloc.ID, browserHeader())
	if err == nil || resp == nil || resp.StatusCode != http.StatusConflict || respCode(resp) != "terminal_session_ended" {
		t.Fatalf("resume after the window: %v, %s; want 409 terminal_session_ended", err, respCode(resp))
	}
}

// TestSessionLimitAndTakeOver: the node bounds sessions per allocation (429
// before the upgrade); a second browser resuming a session takes it over
// and the first is closed with 4001.
func TestSessionLimitAndTakeOver(t *testing.T) {
	r := newRig(t)
	r.sshd.policy = nodetask.SessionPolicy{MaxSessions: 1}
	m := r.mintSession(t, r.alloc, "")
	first := r.openToken(t, r.alloc, m.Token)
	defer first.Close()
	send(t, first, websocket.BinaryMessage, "echo u''p\n")
	readUntil(t, first, "up\r\n")
	_, resp, err := subprotocolDialer(r.mint(t, r.alloc)).Dial(r.url+r.alloc.ID, browserHeader())
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || respCode(resp) != "terminal_session_limit" {
		t.Fatalf("a second session: %v, %s; want 429 terminal_session_limit", err, respCode(resp))
	}
	second := r.openToken(t, r.alloc, r.mintSession(t, r.alloc, m.SessionID).Token)
	defer second.Close()
	if ce := closeOf(t, first); ce.Code != terminalhost.CloseSessionTakenOver {
		t.Fatalf("first browser closed with %d %q; want 4001", ce.Code, ce.Text)
	}
	send(t, second, websocket.BinaryMessage, "echo st''ill\n")
	readUntil(t, second, "still\r\n")
}

func TestBrowserGoneClosesSSH(t *testing.T) {
	r := newRig(t)
	ws := r.open(t, r.alloc)
	send(t, ws, websocket.BinaryMessage, "echo u''p\n")
	readUntil(t, ws, "up\r\n")
	ws.Close() // the tab is closed: TCP goes away without a close frame
	select {
	case <-r.sshd.disconnects:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway kept the SSH connection after the browser went away")
	}
	if e := r.closeRow(t); e.Metadata["end"] != terminal.EndBrowserLeft || e.Metadata["detail"] != nil {
		t.Fatalf("close audit: %+v", e)
	}
}

func TestOversizedFrameCloses1009(t *testing.T) {
	r := newRig(t, func(c *terminalhost.Config) { c.MaxFrameBytes = 4096 })
	ws := r.open(t, r.alloc)
	defer ws.Close()
	send(t, ws, websocket.BinaryMessage, strings.Repeat("x", 5000))
	if ce := closeOf(t, ws); ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close %d, want 1009", ce.Code)
	}
	select {
	case <-r.sshd.disconnects:
	case <-time.After(10 * time.Second):
		t.Fatal("SSH connection outlived the refused frame")
	}
}

func TestShutdownClosesSessions1001(t *testing.T) {
	r := newRig(t)
	ws := r.open(t, r.alloc)
	defer ws.Close()
	send(t, ws, websocket.BinaryMessage, "echo u''p\n")
	readUntil(t, ws, "up\r\n")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- r.gw.Shutdown(ctx)
	}()
	if ce := closeOf(t, ws); ce.Code != websocket.CloseGoingAway {
		t.Fatalf("close %d, want 1001", ce.Code)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if e := r.closeRow(t); e.Metadata["end"] != terminal.EndGatewayShutdown {
		t.Fatalf("close audit: %+v", e)
	}
}

// TestUntrustedHostKey: a node without a certificate from the platform host
// CA is not trusted; the browser gets 503 node_unreachable and no shell.
func TestUntrustedHostKey(t *testing.T) {
	stranger := newTestCA(t).signer.PublicKey()
	policy, _ := terminalhost.HostCertificateAuthority(stranger)
	r := newRig(t, func(c *terminalhost.Config) { c.HostKeys = policy })
	_, resp, err := subprotocolDialer(r.mint(t, r.alloc)).Dial(r.url+r.alloc.ID, browserHeader())
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || respCode(resp) != string(terminalhost.CodeNodeUnreachable) {
		t.Fatalf("got %v %v, want 503 node_unreachable", err, resp)
	}
}

// TestInventoryHostKeys: the default policy trusts exactly the host key the
// node's agent reported. A node with none on record, or presenting another
// key (a man in the middle, a re-imaged node not yet re-reported), gets 503
// node_unreachable: the session certificate never reaches it and no session
// byte is relayed. The reported key opens the shell.
func TestInventoryHostKeys(t *testing.T) {
	r := newRigHost(t, false, func(c *terminalhost.Config) { c.HostKeys = terminalhost.InventoryHostKeys() })
	refused := func(t *testing.T) {
		t.Helper()
		ws, resp, err := subprotocolDialer(r.mint(t, r.alloc)).Dial(r.url+r.alloc.ID, browserHeader())
		if err == nil {
			ws.Close()
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || respCode(resp) != string(terminalhost.CodeNodeUnreachable) {
			t.Fatalf("got %v %v, want 503 node_unreachable", err, resp)
		}
		if a, s := r.sshd.auths.Load(), r.sshd.sessions.Load(); a != 0 || s != 0 {
			t.Fatalf("the refused node saw %d authentication attempts and %d sessions; want none", a, s)
		}
	}
	t.Run("no key reported", func(t *testing.T) { refused(t) })

	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	t.Run("another key reported", func(t *testing.T) {
		r.nodes.setHostKey(r.alloc.NodeID, string(ssh.MarshalAuthorizedKey(other.PublicKey())))
		refused(t)
		if r.sshd.dials.Load() == 0 {
			t.Fatal("the gateway never dialled the node, so the host key was not what refused it")
		}
	})

	t.Run("the reported key", func(t *testing.T) {
		r.nodes.setHostKey(r.alloc.NodeID, string(ssh.MarshalAuthorizedKey(r.sshd.hostKey)))
		ws := r.open(t, r.alloc)
		defer ws.Close()
		send(t, ws, websocket.BinaryMessage, "echo in''ventory\n")
		readUntil(t, ws, "inventory\r\n")
		if r.sshd.sessions.Load() != 1 {
			t.Fatalf("sessions %d, want 1", r.sshd.sessions.Load())
		}
	})
}

// A node whose sshd also has a host certificate is trusted under
// InventoryHostKeys by the certified key, whoever signed the certificate.
func TestInventoryHostKeysCertifiedNode(t *testing.T) {
	r := newRig(t, func(c *terminalhost.Config) { c.HostKeys = terminalhost.InventoryHostKeys() })
	r.nodes.setHostKey(r.alloc.NodeID, string(ssh.MarshalAuthorizedKey(r.sshd.hostKey)))
	ws := r.open(t, r.alloc)
	defer ws.Close()
	send(t, ws, websocket.BinaryMessage, "echo ce''rt\n")
	readUntil(t, ws, "cert\r\n")
}

// TestRefusalsBeforeDial is the refusal table: each case is answered with
// its status and code before any connection to the node, and audited.
func TestRefusalsBeforeDial(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	colleague := identity.Principal{User: identity.User{ID: uuid.NewString()}, TenantID: r.owner.TenantID}
	theirs := allocation.Allocation{ID: uuid.NewString(), TenantID: r.owner.TenantID, ProjectID: uuid.NewString(),
		UserID: colleague.User.ID, NodeID: r.alloc.NodeID, State: allocation.Active}
	r.allocs.put(theirs)

	type attempt struct {
		url    string
		dialer *websocket.Dialer
		header http.Header
		plain  bool // a plain GET instead of a WebSocket handshake
	}
	ws := func(token string, a allocation.Allocation) attempt {
		return attempt{url: r.url + a.ID, dialer: subprotocolDialer(token), header: browserHeader()}
	}
	for _, tc := range []struct {
		name string
		// prepare returns the attempt and the token it must not consume ("" when none).
		prepare     func(t *testing.T) (attempt, string)
		status      int
		code        string
		notConsumed bool
	}{
		{"token used twice", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			if _, err := r.svc.Consume(ctx, tok, r.alloc.ID); err != nil {
				t.Fatal(err)
			}
			return ws(tok, r.alloc), ""
		}, 401, "terminal_token_invalid", false},
		{"token after its TTL", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			r.clock.Advance(301 * time.Second)
			return ws(tok, r.alloc), ""
		}, 401, "terminal_token_invalid", false},
		{"another user may not mint, so no token exists", func(t *testing.T) (attempt, string) {
			if _, err := r.svc.Mint(ctx, colleague, "", r.alloc.ID, ""); fault.From(err).Code != "terminal_not_owner" {
				t.Fatalf("colleague minted for the owner's allocation: %v", err)
			}
			// The colleague's own token does not open the owner's allocation.
			m, err := r.svc.Mint(ctx, colleague, "", theirs.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			return ws(m.Token, r.alloc), ""
		}, 403, "terminal_token_mismatch", false},
		{"token for another allocation", func(t *testing.T) (attempt, string) {
			return ws(r.mint(t, r.other), r.alloc), ""
		}, 403, "terminal_token_mismatch", false},
		{"foreign Origin", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			a := ws(tok, r.alloc)
			a.header = http.Header{"Origin": {"https://evil.example"}}
			return a, tok
		}, 403, "origin_not_allowed", true},
		{"no Origin", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			a := ws(tok, r.alloc)
			a.header = http.Header{}
			return a, tok
		}, 403, "origin_not_allowed", true},
		{"Origin differing only by port", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			a := ws(tok, r.alloc)
			a.header = http.Header{"Origin": {consoleOrigin + ":8443"}}
			return a, tok
		}, 403, "origin_not_allowed", true},
		{"token in the query string", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			return attempt{url: r.url + r.alloc.ID + "?token=" + tok, dialer: &websocket.Dialer{}, header: browserHeader()}, tok
		}, 400, "token_in_query", true},
		{"token-shaped value in the query string", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			a := ws(tok, r.alloc)
			a.url += "?x=" + tok
			return a, tok
		}, 400, "token_in_query", true},
		{"no token", func(t *testing.T) (attempt, string) {
			return attempt{url: r.url + r.alloc.ID, dialer: &websocket.Dialer{Subprotocols: []string{terminalhost.Subprotocol}},
				header: browserHeader()}, ""
		}, 401, "token_missing", false},
		{"Authorization that is not Bearer", func(t *testing.T) (attempt, string) {
			h := browserHeader()
			h.Set("Authorization", "Basic dXNlcjpwYXNz")
			return attempt{url: r.url + r.alloc.ID, dialer: &websocket.Dialer{}, header: h}, ""
		}, 401, "terminal_token_invalid", false},
		{"bearer subprotocol without the terminal subprotocol", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			return attempt{url: r.url + r.alloc.ID, header: browserHeader(),
				dialer: &websocket.Dialer{Subprotocols: []string{terminalhost.BearerSubprotocolPrefix + tok}}}, tok
		}, 400, "validation_failed", true},
		{"not a WebSocket", func(t *testing.T) (attempt, string) {
			tok := r.mint(t, r.alloc)
			h := browserHeader()
			h.Set("Authorization", "Bearer "+tok)
			return attempt{url: "http://" + r.gw.Addr() + "/ws/terminal/" + r.alloc.ID, header: h, plain: true}, tok
		}, 400, "validation_failed", true},
		{"garbage token", func(t *testing.T) (attempt, string) {
			return ws("not-a-token", r.alloc), ""
		}, 401, "terminal_token_invalid", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, keep := tc.prepare(t)
			deniedBefore := deniedCount(t, r)
			var resp *http.Response
			if a.plain {
				req, _ := http.NewRequest(http.MethodGet, a.url, nil)
				req.Header = a.header
				var err error
				if resp, err = http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
			} else {
				conn, rs, err := a.dialer.Dial(a.url, a.header)
				if err == nil {
					conn.Close()
					t.Fatal("the gateway upgraded a request it must refuse")
				}
				resp = rs
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("status %v, want %d", resp, tc.status)
			}
			if got := respCode(resp); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
			if n := r.sshd.dials.Load(); n != 0 {
				t.Fatalf("the gateway dialled the node %d times for a refused request", n)
			}
			if got := deniedCount(t, r); got != deniedBefore+1 {
				t.Fatalf("refusal not audited (%d → %d)", deniedBefore, got)
			}
			if tc.notConsumed {
				// Refused before the token was looked at: it still works.
				if _, err := r.svc.Consume(ctx, keep, r.alloc.ID); err != nil {
					t.Fatalf("refusal consumed the token: %v", err)
				}
			}
		})
	}
}

func deniedCount(t *testing.T, r *rig) int {
	t.Helper()
	evs, _, err := r.audit.List(context.Background(), audit.Filter{Action: terminalsvc.ActionConsume, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Outcome == audit.Denied {
			n++
		}
	}
	return n
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	policy := terminalhost.InsecureAcceptAnyHostKey(nil)
	for _, tc := range []struct {
		name string
		cfg  terminalhost.Config
		ok   bool
	}{
		{"valid", terminalhost.Config{AllowedOrigins: []string{"https://console.example/"}, HostKeys: policy}, true},
		{"no origins", terminalhost.Config{HostKeys: policy}, false},
		{"wildcard origin", terminalhost.Config{AllowedOrigins: []string{"https://*.example"}, HostKeys: policy}, false},
		{"origin with a path", terminalhost.Config{AllowedOrigins: []string{"https://console.example/app"}, HostKeys: policy}, false},
		{"not http", terminalhost.Config{AllowedOrigins: []string{"file://x"}, HostKeys: policy}, false},
		{"no host key policy", terminalhost.Config{AllowedOrigins: []string{"https://console.example"}}, false},
		{"cert ttl too long", terminalhost.Config{AllowedOrigins: []string{"https://c.example"}, HostKeys: policy, CertTTL: time.Hour}, false},
		{"frame limit too small", terminalhost.Config{AllowedOrigins: []string{"https://c.example"}, HostKeys: policy, MaxFrameBytes: 10}, false},
	} {
		err := tc.cfg.CheckAndSetDefaults()
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.ok && (tc.cfg.AllowedOrigins[0] != "https://console.example" || tc.cfg.CertTTL != terminalhost.DefaultCertTTL) {
			t.Errorf("%s: defaults not applied: %+v", tc.name, tc.cfg)
		}
	}
}
