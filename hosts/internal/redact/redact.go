// Package redact keeps secrets out of the hosts' logs: a slog handler that
// withholds the values of sensitive keys, redaction of map- and JSON-shaped
// values, and Text for free text (errors quoting URLs, headers or tokens).
// Every host that logs wraps its logger in NewHandler.
package redact

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Redacted replaces a withheld value.
const Redacted = "[REDACTED]"

// sensitiveFragments mark a key whose value must never be logged. Matching
// on fragments ("refresh_token", "X-Idempotency-Key", "client_secret") errs
// on the side of withholding.
var sensitiveFragments = []string{"token", "secret", "password", "passwd", "authorization", "cookie",
	"credential", "session", "apikey", "api_key", "api-key", "private", "signature", "verifier", "idempotency"}

// sensitiveExact are short keys that are secrets in OAuth/OIDC traffic but
// too generic to match as fragments.
var sensitiveExact = map[string]bool{"code": true, "state": true, "key": true, "jwt": true, "otp": true,
	"pwd": true, "nonce": true, "assertion": true}

// SensitiveKey reports whether values under key must be withheld from logs.
// Answers are remembered (log keys are the program's own constants; every
// access log line asks about ten of them).
func SensitiveKey(key string) bool {
	if v, ok := sensitiveMemo.Load(key); ok {
		return v.(bool)
	}
	ans := sensitiveKey(key)
	if sensitiveMemoSize.Add(1) <= maxSensitiveMemo {
		sensitiveMemo.Store(key, ans)
	}
	return ans
}

var (
	sensitiveMemo     sync.Map // key → bool
	sensitiveMemoSize atomic.Int64
)

// maxSensitiveMemo bounds the remembered keys (a key built from data would
// otherwise grow it).
const maxSensitiveMemo = 1024

func sensitiveKey(key string) bool {
	k := strings.ToLower(key)
	if sensitiveExact[k] {
		return true
	}
	for _, f := range sensitiveFragments {
		if strings.Contains(k, f) {
			return true
		}
	}
	return false
}

// Redact returns a copy of v with every value under a sensitive key
// replaced, at any depth of maps and slices. Use it on anything map- or
// JSON-shaped before it reaches a log.
func Redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if SensitiveKey(k) {
				out[k] = Redacted
			} else {
				out[k] = Redact(val)
			}
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(t))
		for k, val := range t {
			if SensitiveKey(k) {
				out[k] = Redacted
			} else {
				out[k] = val
			}
		}
		return out
	case map[string][]string: // http.Header, url.Values
		out := make(map[string][]string, len(t))
		for k, val := range t {
			if SensitiveKey(k) {
				out[k] = []string{Redacted}
			} else {
				out[k] = append([]string(nil), val...)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = Redact(val)
		}
		return out
	default:
		return v
	}
}

// RedactJSON redacts a JSON document. Input that is not JSON is withheld
// entirely: it cannot be inspected, so it cannot be shown.
func RedactJSON(b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return []byte(`"` + Redacted + ` (not JSON)"`)
	}
	out, err := json.Marshal(Redact(v))
	if err != nil {
		return []byte(`"` + Redacted + `"`)
	}
	return out
}

var (
	urlUserinfo = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)[^/@\s]+@`)
	bearerValue = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`)
	jwtLike     = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	secretParam = regexp.MustCompile(`(?i)\b(password|passwd|pwd|token|access_token|refresh_token|id_token|secret|client_secret|code|state|code_verifier|key|apikey|api_key)=([^&\s"']+)`)
)

// Text removes credentials from free text bound for a log or a health
// report (errors from drivers and clients may quote URLs or headers), and
// caps its length.
func Text(s string) string {
	s = urlUserinfo.ReplaceAllString(s, "${1}"+Redacted+"@")
	s = bearerValue.ReplaceAllString(s, "${1} "+Redacted)
	s = jwtLike.ReplaceAllString(s, Redacted)
	s = secretParam.ReplaceAllString(s, "${1}="+Redacted)
	const max = 300
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return s
}

// handler withholds every attribute whose key is sensitive, so a careless
// log call in a host cannot write a secret. It is a second line of defence;
// the first is not logging request data at all.
type handler struct{ next slog.Handler }

// NewHandler wraps next in the redacting handler (once: a handler that
// already redacts is returned as it is).
func NewHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(handler); ok {
		return h
	}
	return handler{next: next}
}

func (h handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	// Most records (every access log line) hold only plain values under
	// keys that are not sensitive: they pass as they are, not copied.
	clean := true
	r.Attrs(func(a slog.Attr) bool {
		clean = !SensitiveKey(a.Key) && plainKind(a.Value.Kind())
		return clean
	})
	if clean {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return handler{next: h.next.WithAttrs(red)}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{next: h.next.WithGroup(name)}
}

// plainKind reports whether redactAttr leaves a value of kind k as it is
// (no group to walk, nothing to resolve, no value to redact inside).
func plainKind(k slog.Kind) bool {
	return k != slog.KindGroup && k != slog.KindAny && k != slog.KindLogValuer
}

func redactAttr(a slog.Attr) slog.Attr {
	if SensitiveKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok { // drivers' errors quote URLs and headers
			return slog.String(a.Key, Text(err.Error()))
		}
		return slog.Any(a.Key, Redact(v.Any()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
