package resource_test

import (
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/resource"
)

func TestParseFormatRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []resource.ID{
		resource.New("me-central-1", "t1", "p1", resource.TypeAllocation, "a1"),
		resource.New("", "t1", "", resource.TypeTenant, "t1"),
		resource.New("", "", "", resource.TypeSKU, "h100x8"),
	}
	for _, id := range cases {
		s := id.String()
		got, err := resource.Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if got != id {
			t.Fatalf("Parse(%q) = %+v; want %+v", s, got, id)
		}
	}
	if s := cases[0].String(); s != "core42:aicloud:me-central-1:t1:p1:allocation:a1" {
		t.Fatalf("format = %q", s)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "core42:aicloud", "core42:aicloud:r:t:p:allocation:a:extra",
		"::r:t:p:allocation:a",                 // empty partition/service
		"core42:aicloud:r:t:p:spaceship:a",     // unknown type
		"core42:aicloud:r::p:allocation:a",     // project without tenant
		"core42:aicloud:r:t:p:allocation:",     // empty id
		"core42:aicloud:r:t/..:p:allocation:a", // bad characters
		"core42:aicloud:r:t:p:allocation:a b",  // space
	} {
		if _, err := resource.Parse(s); !fault.IsKind(err, fault.KindInvalid) {
			t.Errorf("Parse(%q) err = %v; want Invalid", s, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("core42:aicloud:me-central-1:t1:p1:allocation:a1")
	f.Add("core42:aicloud:::: sku:x")
	f.Add(":::::::")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := resource.Parse(s)
		if err != nil {
			return
		}
		// Whatever parses must format back to the same string and re-parse equal.
		if id.String() != s {
			t.Fatalf("round trip %q -> %q", s, id.String())
		}
		again, err := resource.Parse(id.String())
		if err != nil || again != id {
			t.Fatalf("re-parse of %q: %+v, %v", s, again, err)
		}
	})
}
