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
// between it and the node, so production uses HostCertificateAuthority.
type HostKeyPolicy interface {
	// Callback returns the host key check for one connection to node.
	Callback(node inventory.Node) ssh.HostKeyCallback
}

// HostCertificateAuthority trusts nodes whose sshd presents a host
// certificate signed by one of the platform's host CA keys, valid now, and
// naming the address the gateway dialled (the node's ssh_host) as a
// principal. This is the production choice: nodes get their host certificate
// at enrolment, so the gateway needs no per-node state and a re-imaged node
// is trusted as soon as it re-enrols. Plain host keys are refused.
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
