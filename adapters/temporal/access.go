package temporal

import (
	"context"
	"errors"

	"github.com/gpuaas/gpuaas/ports"
)

// SSHAccess resolves a user's Access from their registered SSH keys and the
// platform SSH user CA.
type SSHAccess struct {
	keys ports.SSHKeyStore
	ca   ports.SSHCertificateAuthority
}

var _ AccessResolver = (*SSHAccess)(nil)

// NewSSHAccess builds the resolver; both ports are required.
func NewSSHAccess(keys ports.SSHKeyStore, ca ports.SSHCertificateAuthority) (*SSHAccess, error) {
	if keys == nil || ca == nil {
		return nil, errors.New("temporal: SSHAccess needs an SSHKeyStore and an SSHCertificateAuthority")
	}
	return &SSHAccess{keys: keys, ca: ca}, nil
}

// ResolveAccess implements [AccessResolver].
func (s *SSHAccess) ResolveAccess(ctx context.Context, userID string, keyIDs []string) (Access, error) {
	ks, err := s.keys.ListSSHKeys(ctx, userID)
	if err != nil {
		return Access{}, err
	}
	caKey, err := s.ca.PublicKey(ctx)
	if err != nil {
		return Access{}, err
	}
	a := Access{UserCAKey: caKey, AuthorizedKeys: make([]string, 0, len(ks))}
	want := make(map[string]bool, len(keyIDs))
	for _, id := range keyIDs {
		want[id] = true
	}
	for _, k := range ks {
		// A key deleted since the request is simply not installed.
		if len(want) == 0 || want[k.ID] {
			a.AuthorizedKeys = append(a.AuthorizedKeys, k.PublicKey)
		}
	}
	return a, nil
}
