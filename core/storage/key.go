package storage

import (
	"strings"

	"github.com/gpuaas/gpuaas/core/fault"
)

// Scope is the project whose storage a call works in: the tenant that owns
// it and the project. Both come from the authenticated request, never from
// a path.
type Scope struct {
	TenantID  string
	ProjectID string
}

// validID accepts the ids the platform mints (UUIDs) and nothing that could
// change a key's shape: 1..MaxIDBytes of [A-Za-z0-9_-].
func validID(id string) bool {
	if id == "" || len(id) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Validate checks both ids. An invalid scope is a bug in the caller (ids
// come from the platform), so it is an internal error, never shown.
func (s Scope) Validate() error {
	if !validID(s.TenantID) || !validID(s.ProjectID) {
		return fault.Internal(errBadScope)
	}
	return nil
}

type scopeError struct{}

func (scopeError) Error() string {
	return "storage: tenant and project ids must be 1-64 of [A-Za-z0-9_-]"
}

var errBadScope = scopeError{}

// Prefix is the key prefix of the project's objects: "{tenant}/{project}/".
// Every key of the project starts with it and no other project's does.
func (s Scope) Prefix() (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	return s.TenantID + "/" + s.ProjectID + "/", nil
}

// ObjectKey resolves a file's path to its object key: Prefix + the
// canonical path. The root is not a file and has no key.
func (s Scope) ObjectKey(p Path) (string, error) {
	prefix, err := s.Prefix()
	if err != nil {
		return "", err
	}
	if p.IsRoot() {
		return "", &fault.Error{Kind: fault.KindInvalid, Code: CodePathTraversal, Field: "path",
			Message: "path names the project's top folder, not a file"}
	}
	return prefix + p.p, nil
}

// PathOfKey is ObjectKey's inverse: the path of a key under the scope's
// prefix. ok is false for a key outside the prefix or one whose rest is not
// a canonical path (the reconciler leaves such keys alone and reports them).
func (s Scope) PathOfKey(key string) (Path, bool) {
	prefix, err := s.Prefix()
	if err != nil || !strings.HasPrefix(key, prefix) {
		return Path{}, false
	}
	p, err := FromCanonical(key[len(prefix):])
	if err != nil || p.IsRoot() {
		return Path{}, false
	}
	return p, true
}
