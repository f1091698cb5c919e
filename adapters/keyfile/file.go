package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// loadOrCreate returns the contents of path, creating it with generate()
// (mode 0600) when it does not exist. Creation is atomic and race-free
// across processes: the bytes are written and synced to a temporary file in
// the same directory, then hard-linked into place, which fails if another
// process linked first; the loser reads the winner's file. A reader thus
// never sees a partly written key.
func loadOrCreate(path string, create bool, generate func() ([]byte, error)) ([]byte, error) {
	b, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !create {
		return b, err
	}
	content, err := generate()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keyfile-*")
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; Chmod states it and survives
	// an unusual umask.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return content, nil
}

// readKeyFile reads a key file, refusing one that others may read: a key
// that leaked to other local users must be replaced, not used.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keyfile: %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyfile: %s is accessible to group or others (mode %#o); chmod 600 it", path, st.Mode().Perm())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("keyfile: read %s: %w", path, err)
	}
	return b, nil
}
