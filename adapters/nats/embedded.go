package nats

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	// Host to bind. Default 127.0.0.1: the embedded server is for one
	// machine (`gpuaas dev`, tests) and has no authentication.
	Host string
	// Port to bind; 0 picks a free one. Restart keeps the port chosen.
	Port int
	// StoreDir holds JetStream's files. Required: restarting on the same
	// directory is what keeps streams, consumers and dedupe state.
	StoreDir string
	// ServerName is stable across restarts. Default "gpuaas-embedded".
	ServerName string
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Default 10s.
	ReadyTimeout time.Duration
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *EmbeddedConfig) CheckAndSetDefaults() error {
	if c.StoreDir == "" {
		return errors.New("nats: embedded server needs a StoreDir")
	}
	if c.Port < 0 || c.Port > 65535 {
		return errors.New("nats: embedded Port out of range")
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.ServerName == "" {
		c.ServerName = "gpuaas-embedded"
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	return nil
}

// EmbeddedServer is a nats-server running inside this process.
type EmbeddedServer struct {
	mu  sync.Mutex
	cfg EmbeddedConfig
	srv *server.Server
}

// StartEmbedded starts nats-server with JetStream in-process and waits
// until it accepts clients.
func StartEmbedded(cfg EmbeddedConfig) (*EmbeddedServer, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	e := &EmbeddedServer{cfg: cfg}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *EmbeddedServer) start() error {
	port := e.cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName:             e.cfg.ServerName,
		Host:                   e.cfg.Host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               e.cfg.StoreDir,
		NoLog:                  true,
		NoSigs:                 true, // the host owns signal handling
		DisableJetStreamBanner: true,
		HTTPPort:               0, // no monitoring listener
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats: embedded server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(e.cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("nats: embedded server not ready within %v", e.cfg.ReadyTimeout)
	}
	if e.cfg.Port == 0 {
		// Pin the chosen port so a restart comes back where clients
		// expect it.
		_, p, err := net.SplitHostPort(srv.Addr().String())
		if err != nil {
			srv.Shutdown()
			return err
		}
		e.cfg.Port, _ = strconv.Atoi(p)
	}
	e.srv = srv
	return nil
}

// ClientURL is the URL clients connect to.
func (e *EmbeddedServer) ClientURL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return "nats://" + net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port))
}

// Port is the bound port.
func (e *EmbeddedServer) Port() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Port
}

// StoreDir is the JetStream store directory.
func (e *EmbeddedServer) StoreDir() string { return e.cfg.StoreDir }

// Shutdown stops the server and waits until it has. It is safe to call
// more than once.
func (e *EmbeddedServer) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown()
}

func (e *EmbeddedServer) shutdown() {
	if e.srv == nil {
		return
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.srv = nil
}

// Restart stops the server (if running) and starts it again on the same
// host, port and store directory; clients reconnect on their own.
func (e *EmbeddedServer) Restart() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown()
	return e.start()
}
