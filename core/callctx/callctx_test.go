package callctx_test

import (
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/callctx"
)

func TestValidCorrelationID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"0192e5a4-7b1c-7000-8000-000000000001": true,
		"trace:abc.def_1":                      true,
		strings.Repeat("a", 128):               true,
		"":                                     false,
		strings.Repeat("a", 129):               false,
		"a b":                                  false,
		"a\nb":                                 false,
		"a\x1b[31m":                            false,
		"évil":                                 false,
		"a/b":                                  false,
	} {
		if got := callctx.ValidCorrelationID(id); got != want {
			t.Errorf("ValidCorrelationID(%q) = %v, want %v", id, got, want)
		}
	}
}
