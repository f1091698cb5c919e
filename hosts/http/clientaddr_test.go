package httphost

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/gpuaas/gpuaas/core/policy"
)

func TestResolveClientIP(t *testing.T) {
	t.Parallel()
	proxies, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer, xff, fwd, want string
		proxies                    []netip.Prefix
	}{
		{"no proxies: headers ignored", "203.0.113.9:5000", "198.51.100.1", "", "203.0.113.9", nil},
		{"untrusted peer: headers ignored", "203.0.113.9:5000", "198.51.100.1", "", "203.0.113.9", proxies},
		{"trusted peer, one hop", "10.1.2.3:5000", "198.51.100.1", "", "198.51.100.1", proxies},
		{"spoofed left entries are not believed", "10.1.2.3:5000", "1.1.1.1, 198.51.100.1", "", "198.51.100.1", proxies},
		{"two trusted hops", "10.1.2.3:5000", "198.51.100.1, 192.0.2.7", "", "198.51.100.1", proxies},
		{"Forwarded wins over X-Forwarded-For", "10.1.2.3:5000", "198.51.100.1", `for=198.51.100.2;proto=https, for="[2001:db8::1]:443"`, "2001:db8::1", proxies},
		{"garbage stops at the last trusted hop", "10.1.2.3:5000", "198.51.100.1, nonsense", "", "10.1.2.3", proxies},
		{"only proxies: the leftmost", "10.1.2.3:5000", "10.9.9.9", "", "10.9.9.9", proxies},
		{"trusted peer without headers", "[fd00::5]:443", "", "", "fd00::5", proxies},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.fwd != "" {
			r.Header.Set("Forwarded", tc.fwd)
		}
		if got := resolveClientIP(r, tc.proxies); got != tc.want {
			t.Errorf("%s: %s; want %s", tc.name, got, tc.want)
		}
	}
	if _, err := ParseTrustedProxies([]string{"not-an-address"}); err == nil {
		t.Fatal("a bad entry was accepted")
	}
}

// Behind a trusted proxy the anonymous budget is per real client; from an
// untrusted peer, per peer whatever X-Forwarded-For claims.
func TestRateLimitBehindProxies(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for _, tc := range []struct {
		name       string
		trusted    []netip.Prefix
		otherAllow bool // does a second client get its own budget?
	}{
		{"through a trusted proxy", []netip.Prefix{loopback}, true},
		{"from an untrusted peer", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *Config, _ *Deps) { c.TrustedProxies = tc.trusted })
			h.store.setPolicy(policy.RateLimitAuthRPM, "2")
			call := func(client string) response {
				return h.do(req{method: "POST", path: "/api/v1/auth/logout", header: map[string]string{"X-Forwarded-For": client}})
			}
			for i := 0; i < 2; i++ {
				if r := call("198.51.100.1"); r.status == 429 {
					t.Fatalf("call %d of client A limited", i+1)
				}
			}
			if r := call("198.51.100.1"); r.status != 429 {
				t.Fatalf("third call of client A: %d; want 429", r.status)
			}
			r := call("198.51.100.2")
			if (r.status != 429) != tc.otherAllow {
				t.Fatalf("client B's first call: %d (own budget expected: %v)", r.status, tc.otherAllow)
			}
			if r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("Content-Security-Policy") != "frame-ancestors 'none'" {
				t.Fatalf("secure headers missing: %v", r.header)
			}
		})
	}
}
