package terminalhost

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/inventory"
)

// HostKeyPolicy decides whether the gateway trusts the host key a node
// presents. It is the gateway's only defence against a man in the middle
// between it and the node: production uses InventoryHostKeys (the default)
// or HostCertificateAuthority. The callback runs before the gateway
// authenticates, so a refused node never sees the session certificate.
type HostKeyPolicy interface {
	// Callback returns the host key check for one connection to node.
	Callback(node inventory.Node) ssh.HostKeyCallback
}

// InventoryHostKeys trusts exactly the host key the node's own agent last
// reported in its heartbeat (node.SSHHostKey). That report travels over the
// agent's mTLS channel, authenticated by the node's client certificate, so
// it binds the key to the enrolled node without a host CA. A node whose
// agent has reported no key (or one that does not parse) is refused.
func InventoryHostKeys() HostKeyPolicy { return inventoryKeys{} }

type inventoryKeys struct{}

func (inventoryKeys) Callback(node inventory.Node) ssh.HostKeyCallback {
	if node.SSHHostKey == "" {
		return func(string, net.Addr, ssh.PublicKey) error {
			return fmt.Errorf("terminalhost: node %s has not reported its SSH host key (is its agent up to date and heartbeating?)", node.ID)
		}
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(node.SSHHostKey))
	if err != nil {
		return func(string, net.Addr, ssh.PublicKey) error {
			return fmt.Errorf("terminalhost: node %s has an unreadable SSH host key on record", node.ID)
		}
	}
	return func(_ string, _ net.Addr, got ssh.PublicKey) error {
		// An sshd that also has a host certificate may present it; the key
		// it certifies is what the handshake proved possession of.
		if c, ok := got.(*ssh.Certificate); ok {
			got = c.Key
		}
		if !bytes.Equal(got.Marshal(), want.Marshal()) {
			return fmt.Errorf("terminalhost: node %s presented host key %s, but its agent reported %s",
				node.ID, ssh.FingerprintSHA256(got), ssh.FingerprintSHA256(want))
		}
		return nil
	}
}

// HostCertificateAuthority trusts nodes whose sshd presents a host
// certificate signed by one of the given host CA keys, valid now, and
// naming the address the gateway dialled (the node's ssh_host) as a
// principal. The gateway needs no per-node state, but something must issue
// the host certificates (the platform does not yet). Plain host keys are
// refused.
func HostCertificateAuthority(authorities ...ssh.PublicKey) (HostKeyPolicy, error) {
	if len(authorities) == 0 {
		return nil, errors.New("terminalhost: at least one host CA key is required")
	}
	return hostCA{keys: authorities}, nil
}

type hostCA struct{ keys []ssh.PublicKey }

func (h hostCA) Callback(inventory.Node) ssh.HostKeyCallback {
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			for _, k := range h.keys {
				if bytes.Equal(k.Marshal(), auth.Marshal()) {
					return true
				}
			}
			return false
		},
		HostKeyFallback: func(string, net.Addr, ssh.PublicKey) error {
			return errors.New("terminalhost: node presented a plain host key; a host certificate is required")
		},
	}
	return checker.CheckHostKey
}

// InsecureAcceptAnyHostKey accepts whatever host key a node presents and
// logs its fingerprint with the node id, so an operator can compare it. It is
// for development (sandbox nodes on the same machine) only: on a network it
// gives no protection against a man in the middle.
func InsecureAcceptAnyHostKey(log *slog.Logger) HostKeyPolicy {
	return insecureAny{log: log}
}

type insecureAny struct{ log *slog.Logger }

func (p insecureAny) Callback(node inventory.Node) ssh.HostKeyCallback {
	return func(addr string, _ net.Addr, key ssh.PublicKey) error {
		if p.log != nil {
			p.log.Warn("accepting node host key without verification (development policy)",
				"node_id", node.ID, "addr", addr, "fingerprint", ssh.FingerprintSHA256(key))
		}
		return nil
	}
}

// PinnedHostKeys trusts exactly the given key per node id. Useful where host
// keys are recorded out of band; a node without an entry is refused.
func PinnedHostKeys(keys map[string]ssh.PublicKey) HostKeyPolicy {
	return pinned(keys)
}

type pinned map[string]ssh.PublicKey

func (p pinned) Callback(node inventory.Node) ssh.HostKeyCallback {
	want, ok := p[node.ID]
	if !ok {
		return func(string, net.Addr, ssh.PublicKey) error {
			return fmt.Errorf("terminalhost: no pinned host key for node %s", node.ID)
		}
	}
	return ssh.FixedHostKey(want)
}
