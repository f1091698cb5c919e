package admin_test

import (
	"os"
	"strings"
	"testing"
	"unicode"

	"github.com/gpuaas/gpuaas/core/admin"
)

// TestRunbookAnchorsExist: every runbook the ops view may point at is a
// section of doc/runbook.md, so the console's link to it (/admin/runbooks#
// anchor, which shows that document) and the repository's land on it.
func TestRunbookAnchorsExist(t *testing.T) {
	t.Parallel()
	md, err := os.ReadFile("../../doc/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	// GitHub's anchors for the document's headings (outside code fences):
	// lower case; letters, digits, "-" and "_" kept; spaces to "-".
	anchors := map[string]bool{}
	fence := false
	for _, line := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		anchors[b.String()] = true
	}
	ids := map[string]bool{}
	for _, rb := range admin.Runbooks {
		if ids[rb.ID] {
			t.Errorf("runbook id %q twice", rb.ID)
		}
		ids[rb.ID] = true
		if !anchors[rb.Anchor] {
			t.Errorf("runbook %q points at #%s, which is no heading of doc/runbook.md", rb.ID, rb.Anchor)
		}
	}
}
