package connecthost

import (
	"context"
	"crypto/tls"
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
