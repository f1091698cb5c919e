package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTheContractIsValid(t *testing.T) {
	t.Parallel()
	if err := check("../../doc/api/openapi.yaml"); err != nil {
		t.Fatalf("doc/api/openapi.yaml: %v", err)
	}
}

// TestAnInvalidDocumentFails reintroduces the defect the contract once had:
// an unquoted comma inside a flow mapping adds a sibling key to a schema.
func TestAnInvalidDocumentFails(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../doc/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good := `schema: {type: object, description: "The provider's event, verified over its raw bytes."}`
	if !strings.Contains(string(data), good) {
		t.Fatal("the webhook schema line moved; update this test")
	}
	bad := strings.Replace(string(data), good, `schema: {type: object, description: The provider's event, verified over its raw bytes.}`, 1)
	path := filepath.Join(t.TempDir(), "openapi.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err = check(path)
	if err == nil || !strings.Contains(err.Error(), "extra sibling fields") {
		t.Fatalf("check(broken) = %v, want the extra sibling fields error", err)
	}
}
