package devoidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// LoadOrCreateKey returns the signing key kept in path (a PKCS#8 "PRIVATE
// KEY" PEM block), creating a P-256 key there (mode 0600) on first use, so
// that the tokens a `gpuaas dev` issued stay valid after it restarts. A file
// that group or others may read is refused: a dev key that leaked to other
// local users must be replaced (delete the file), not used.
func LoadOrCreateKey(path string) (crypto.Signer, error) {
	b, err := readPrivateFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, gerr := ecdsa.GenerateKey(elliptic.P256(), cryptoRand)
		if gerr != nil {
			return nil, fmt.Errorf("devoidc: generate signing key: %w", gerr)
		}
		der, merr := x509.MarshalPKCS8PrivateKey(k)
		if merr != nil {
			return nil, fmt.Errorf("devoidc: encode signing key: %w", merr)
		}
		b = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err = createExclusive(path, b); errors.Is(err, fs.ErrExist) {
			// Another process created it first: use theirs.
			b, err = readPrivateFile(path)
		}
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("devoidc: %s holds no PKCS#8 PRIVATE KEY PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devoidc: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("devoidc: %s: unsupported key type %T", path, key)
	}
	if _, err := algorithmFor(signer); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return signer, nil
}

// readPrivateFile reads a file only its owner may read.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("devoidc: %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("devoidc: %s is accessible to group or others (mode %#o); delete it or chmod 600 it", path, st.Mode().Perm())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("devoidc: read %s: %w", path, err)
	}
	return b, nil
}

// createExclusive writes b to a new 0600 file at path: to a temporary file
// first, then linked into place, so no reader sees it half written and an
// existing file is never replaced (fs.ErrExist).
func createExclusive(path string, b []byte) error {
	tmp, err := writeTemp(path, b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("devoidc: %w", err)
	}
	return nil
}

// writeTemp writes b to a 0600 temporary file beside path.
func writeTemp(path string, b []byte) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("devoidc: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return "", fmt.Errorf("devoidc: %w", err)
	}
	// CreateTemp makes it 0600 already; Chmod states it whatever the umask.
	if err := f.Chmod(0o600); err == nil {
		_, err = f.Write(b)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("devoidc: %w", err)
	}
	return f.Name(), nil
}

// savedState is the StateFile: the sign-in sessions and their refresh
// tokens, by hash. Authorization requests and codes live for minutes and
// are not kept.
type savedState struct {
	Version  int            `json:"version"`
	Sessions []savedSession `json:"sessions"`
	Refresh  []savedRefresh `json:"refresh_tokens"`
}

type savedSession struct {
	SID      string    `json:"sid"`
	Username string    `json:"username"`
	Scope    string    `json:"scope"`
	Nonce    string    `json:"nonce,omitempty"`
	AuthTime time.Time `json:"auth_time"`
	Expires  time.Time `json:"expires"`
	Revoked  bool      `json:"revoked,omitempty"`
}

type savedRefresh struct {
	Hash    string    `json:"sha256"`
	SID     string    `json:"sid"`
	Expires time.Time `json:"expires"`
	Used    bool      `json:"used,omitempty"`
}

// loadState reads the StateFile into the provider's maps; a missing file is
// an empty state. Sessions of users no longer configured are dropped.
func (p *Provider) loadState() error {
	b, err := readPrivateFile(p.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("devoidc: %s: %w (delete it to start with no sessions)", p.cfg.StateFile, err)
	}
	if st.Version != 1 {
		return fmt.Errorf("devoidc: %s has version %d, want 1 (delete it to start with no sessions)", p.cfg.StateFile, st.Version)
	}
	now := p.now()
	for _, s := range st.Sessions {
		if _, ok := p.lookupLocked(s.Username); !ok || now.After(s.Expires) {
			continue
		}
		p.families[s.SID] = &family{username: s.Username, scope: s.Scope, nonce: s.Nonce, authTime: s.AuthTime,
			expires: s.Expires, revoked: s.Revoked}
	}
	for _, r := range st.Refresh {
		if p.families[r.SID] == nil || now.After(r.Expires) {
			continue
		}
		p.refreshes[r.Hash] = &refreshRec{family: r.SID, expires: r.Expires, used: r.Used}
	}
	return nil
}

// saveLocked writes the sessions to the StateFile (temporary file, then
// rename, so a crash leaves the old or the new state, never half of one).
// p.mu is held. Without a StateFile it does nothing.
func (p *Provider) saveLocked() error {
	if p.cfg.StateFile == "" {
		return nil
	}
	st := savedState{Version: 1, Sessions: []savedSession{}, Refresh: []savedRefresh{}}
	for sid, f := range p.families {
		st.Sessions = append(st.Sessions, savedSession{SID: sid, Username: f.username, Scope: f.scope, Nonce: f.nonce,
			AuthTime: f.authTime, Expires: f.expires, Revoked: f.revoked})
	}
	for h, r := range p.refreshes {
		st.Refresh = append(st.Refresh, savedRefresh{Hash: h, SID: r.family, Expires: r.expires, Used: r.used})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("devoidc: encode state: %w", err)
	}
	tmp, err := writeTemp(p.cfg.StateFile, b)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, p.cfg.StateFile); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("devoidc: %w", err)
	}
	return nil
}
