package httphost

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
)

// TestAllocationPageEncodingMatches: the hand-written allocation page is
// byte for byte what encoding/json makes of the generated types, with every
// optional field present and absent, odd text and times in several zones.
func TestAllocationPageEncodingMatches(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 5*3600+1800))
	later := at.Add(90 * time.Minute).UTC()
	full := allocation.Allocation{ID: "0190a0b0-0000-7000-8000-000000000001", TenantID: "t1", ProjectID: "p1", UserID: "u1",
		SKUID: "h100-80g-x1", NodeID: "n1", State: allocation.Released, PriceMinor: 299, Currency: "usd",
		FailureCode: `odd "code" \ <&> ü` + "\u2028", CreatedAt: at, UpdatedAt: later, ActiveAt: &at, ReleaseRequestedAt: &later,
		ReleaseReason: "cost_cap_reached", ReleasedAt: &later, MaxTotalCostMinor: 1234, APIKeyID: "k1"}
	bare := allocation.Allocation{ID: "0190a0b0-0000-7000-8000-000000000002", TenantID: "t1", ProjectID: "p1", UserID: "u1",
		SKUID: "a100", State: allocation.Requested, Currency: "eur", CreatedAt: time.Unix(0, 0), UpdatedAt: time.Unix(1, 5).UTC()}
	for _, tc := range []struct {
		list []allocation.Allocation
		next string
	}{{nil, ""}, {[]allocation.Allocation{full}, ""}, {[]allocation.Allocation{full, bare}, "Y3Vyc29yLzE="}, {[]allocation.Allocation{bare}, "x"}} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(allocationPage(tc.list, tc.next)); err != nil {
			t.Fatal(err)
		}
		if got := appendAllocationPage(nil, tc.list, tc.next); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("hand-written\n%s\nencoding/json\n%s", got, want.Bytes())
		}
	}
}

// TestPlainJSON8: the word-at-a-time test agrees with the byte test for
// every byte value at every position, and with neighbours of every kind.
func TestPlainJSON8(t *testing.T) {
	t.Parallel()
	plain := func(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' && c < 0x80 }
	for _, base := range []string{"abcdefgh", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", "        ", "!!!!!!!!", "]]]]]]]]", "########"} {
		for pos := range 8 {
			for c := range 256 {
				w := []byte(base)
				w[pos] = byte(c)
				want := true
				for _, x := range w {
					want = want && plain(x)
				}
				if got := plainJSON8(string(w)); got != want {
					t.Fatalf("%q: %v, want %v", w, got, want)
				}
			}
		}
	}
}
