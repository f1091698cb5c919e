package terminal_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/terminal"
)

func TestNewTokenIs256BitBase64URL(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok, err := terminal.NewToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 43 || strings.ContainsAny(tok, "+/=") || !terminal.WellFormed(tok) {
			t.Fatalf("token %q is not 32 bytes of unpadded base64url", tok)
		}
		if seen[tok] {
			t.Fatal("duplicate token")
		}
		seen[tok] = true
	}
	if _, err := terminal.NewToken(bytes.NewReader(make([]byte, 10))); !fault.IsKind(err, fault.KindInternal) {
		t.Fatalf("short entropy source: got %v, want internal error", err)
	}
}

func TestWellFormed(t *testing.T) {
	t.Parallel()
	good, _ := terminal.NewToken(rand.Reader)
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"fresh token", good, true},
		{"empty", "", false},
		{"one char short", good[:42], false},
		{"one char long", good + "A", false},
		{"standard base64 alphabet", strings.Repeat("+", 43), false},
		{"padded", good[:42] + "=", false},
	} {
		if got := terminal.WellFormed(tc.in); got != tc.want {
			t.Errorf("%s: WellFormed(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestStoreKeyHidesToken(t *testing.T) {
	t.Parallel()
	tok, _ := terminal.NewToken(rand.Reader)
	k := terminal.StoreKey(tok)
	if strings.Contains(k, tok) || !strings.HasPrefix(k, "terminal:") || len(k) != len("terminal:")+64 {
		t.Fatalf("store key %q must be a prefixed SHA-256 hex of the token", k)
	}
	if terminal.StoreKey(tok) != k {
		t.Fatal("store key is not deterministic")
	}
	other, _ := terminal.NewToken(rand.Reader)
	if terminal.StoreKey(other) == k {
		t.Fatal("distinct tokens share a key")
	}
}

func grant(now time.Time) terminal.Grant {
	return terminal.Grant{UserID: "u1", TenantID: "t1", ProjectID: "p1", AllocationID: "a1", NodeID: "n1",
		SSHUser: "ga_00000000a1", ExpiresAt: now.Add(terminal.TokenTTL), SessionID: "sess-0001"}
}

func TestGrantCheck(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := grant(now)
	for _, tc := range []struct {
		name  string
		alloc string
		at    time.Time
		code  fault.Code
	}{
		{"fresh, right allocation", "a1", now, ""},
		{"one second before expiry", "a1", now.Add(terminal.TokenTTL - time.Second), ""},
		{"at expiry", "a1", now.Add(terminal.TokenTTL), terminal.CodeTokenInvalid},
		{"after expiry", "a1", now.Add(time.Hour), terminal.CodeTokenInvalid},
		{"another allocation", "a2", now, terminal.CodeTokenMismatch},
	} {
		err := g.Check(tc.alloc, tc.at)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: unexpected %v", tc.name, err)
			}
			continue
		}
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Code != tc.code {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
	if terminal.ErrTokenInvalid().Kind != fault.KindUnauthenticated || terminal.ErrTokenMismatch().Kind != fault.KindForbidden {
		t.Fatal("refusal kinds must be unauthenticated (401) and forbidden (403)")
	}
}

func TestGrantRoundTrip(t *testing.T) {
	t.Parallel()
	g := grant(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := terminal.DecodeGrant(b)
	if err != nil || back != g {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{"", "not json", `{"user_id":"u"}`, `{}`} {
		if _, err := terminal.DecodeGrant([]byte(bad)); !errors.Is(err, terminal.ErrTokenInvalid()) {
			t.Errorf("DecodeGrant(%q) = %v, want terminal_token_invalid", bad, err)
		}
	}
}

func TestParseControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in         string
		ok         bool
		cols, rows int
	}{
		{`{"type":"resize","cols":132,"rows":43}`, true, 132, 43},
		{`{"type":"resize","cols":1,"rows":1}`, true, 1, 1},
		{`{"type":"resize","cols":0,"rows":43}`, false, 0, 0},
		{`{"type":"resize","cols":80,"rows":100000}`, false, 0, 0},
		{`{"type":"resize","cols":-1,"rows":10}`, false, 0, 0},
		{`{"type":"exec","cmd":"rm -rf /"}`, false, 0, 0},
		{`{"type":`, false, 0, 0},
		{`ls -la`, false, 0, 0},
	} {
		c, err := terminal.ParseControl([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && (c.Cols != tc.cols || c.Rows != tc.rows)) {
			t.Errorf("ParseControl(%s) = %+v, %v; want ok=%v", tc.in, c, err, tc.ok)
		}
	}
}
