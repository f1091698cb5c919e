package connecthost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"time"
)

// handshakeListener completes each TLS handshake before handing the
// connection to the HTTP server, so a client certificate the handshake
// refuses (another CA, expired) can be audited: with tls.NewListener the
// refusal would only reach the server's error log. Handshakes run in their
// own goroutines, so one slow client cannot hold up the others.
type handshakeListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	refused func(remoteAddr string, err *tls.CertificateVerificationError)

	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error // the inner listener's Accept error, once it failed

	issuers issuerCerts
	// serveH2, when set, serves the connections that negotiated HTTP/2,
	// each on a goroutine of its own; Accept returns only the others.
	serveH2 func(net.Conn)
}

func newHandshakeListener(inner net.Listener, cfg *tls.Config, refused func(string, *tls.CertificateVerificationError)) *handshakeListener {
	l := &handshakeListener{Listener: inner, cfg: cfg, timeout: 10 * time.Second, refused: refused,
		conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *handshakeListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.close()
			return
		}
		go l.handshake(c)
	}
}

func (l *handshakeListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) && l.refused != nil {
			l.refused(c.RemoteAddr().String(), ve)
		}
		_ = c.Close()
		return
	}
	l.issuers.share(tc.ConnectionState())
	if l.serveH2 != nil && tc.ConnectionState().NegotiatedProtocol == "h2" {
		// A new goroutine: this one's stack grew in the handshake.
		go l.serveH2(tc)
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		_ = tc.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *handshakeListener) close() { l.once.Do(func() { close(l.done) }) }

// Close stops accepting; connections already handed out stay open.
func (l *handshakeListener) Close() error {
	l.close()
	return l.Listener.Close()
}

// issuerCerts holds one parsed copy of each CA certificate (intermediate,
// root) that verified client chains run through. Every agent presents its
// intermediate with its leaf, so each connection would otherwise keep its
// own parse of the same certificate (about 2.4 KB) for as long as it is
// open — one connection per agent, for good (doc/performance.md, agent
// gateway at fleet scale).
type issuerCerts struct {
	mu    sync.Mutex
	certs map[string]*x509.Certificate // by DER
}

// maxIssuerCerts bounds the table. Only certificates of verified chains
// other than the leaf enter it — CA certificates under the gateway's
// roots, a handful per intermediate rotation — so the bound is a backstop.
const maxIssuerCerts = 256

// share replaces, in the connection's state, each CA certificate of the
// verified chains — and the same certificates among those the client
// sent — with the shared copy. crypto/tls asks that these not be modified:
// the replacement is the same certificate (byte for byte, and parsed
// certificates are not changed after parsing), and it happens right after
// the handshake, before anything else reads the state. Should a later Go
// hand out copies of its slices, this only stops saving memory.
func (ic *issuerCerts) share(st tls.ConnectionState) {
	if len(st.VerifiedChains) == 0 {
		return
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.certs == nil {
		ic.certs = map[string]*x509.Certificate{}
	}
	for _, chain := range st.VerifiedChains {
		for i := 1; i < len(chain); i++ {
			if shared, ok := ic.certs[string(chain[i].Raw)]; ok {
				chain[i] = shared
			} else if len(ic.certs) < maxIssuerCerts {
				ic.certs[string(chain[i].Raw)] = chain[i]
			}
		}
	}
	for i := 1; i < len(st.PeerCertificates); i++ {
		if shared, ok := ic.certs[string(st.PeerCertificates[i].Raw)]; ok {
			st.PeerCertificates[i] = shared
		}
	}
}
