package httphost

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies reads CIDR prefixes and bare addresses (a bare
// address is its own /32 or /128).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("httphost: trusted proxy %q is neither an address nor a CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func trusted(prefixes []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolveClientIP is the client's address: the peer's, unless the peer is a
// trusted proxy, in which case the forwarded chain (Forwarded, else
// X-Forwarded-For) is read from the right, skipping trusted proxies, and
// the first address that is not one is the client. A chain made only of
// trusted proxies yields its leftmost entry; a malformed entry stops the
// walk at the last trusted hop (whatever a client wrote before its first
// proxy cannot be believed). With no trusted proxies, headers are ignored.
func resolveClientIP(r *http.Request, proxies []netip.Prefix) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	pa, err := netip.ParseAddr(peer)
	if err != nil || len(proxies) == 0 || !trusted(proxies, pa) {
		return peer
	}
	chain := forwardedFor(r.Header.Values("Forwarded"))
	if len(chain) == 0 {
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for _, part := range strings.Split(v, ",") {
				chain = append(chain, strings.TrimSpace(part))
			}
		}
	}
	client := pa
	for i := len(chain) - 1; i >= 0; i-- {
		a, err := parseNode(chain[i])
		if err != nil {
			break
		}
		client = a
		if !trusted(proxies, a) {
			break
		}
	}
	return client.Unmap().String()
}

// forwardedFor returns the for= values of RFC 7239 Forwarded headers in
// order.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					out = append(out, strings.Trim(val, `"`))
				}
			}
		}
	}
	return out
}

// parseNode reads an address as forwarding headers write it: bare, with a
// port, or bracketed IPv6 with or without one.
func parseNode(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	return netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
}
