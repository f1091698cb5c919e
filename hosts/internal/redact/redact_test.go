package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/hosts/internal/redact"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	in := map[string]any{"user": "u", "password": "p", "nested": map[string]any{"Refresh_Token": "r", "ok": 1,
		"list": []any{map[string]any{"client_secret": "s", "name": "n"}}}, "X-Idempotency-Key": "k", "code": "c"}
	out := redact.Redact(in).(map[string]any)
	nested := out["nested"].(map[string]any)
	item := nested["list"].([]any)[0].(map[string]any)
	if out["user"] != "u" || out["password"] != redact.Redacted || nested["Refresh_Token"] != redact.Redacted || nested["ok"] != 1 ||
		item["client_secret"] != redact.Redacted || item["name"] != "n" || out["X-Idempotency-Key"] != redact.Redacted || out["code"] != redact.Redacted {
		t.Fatalf("Redact = %v", out)
	}
	if in["password"] != "p" {
		t.Fatal("Redact changed its input")
	}
	if got := string(redact.RedactJSON([]byte(`{"access_token":"a","n":1}`))); got != `{"access_token":"[REDACTED]","n":1}` {
		t.Fatalf("RedactJSON = %s", got)
	}
	if got := string(redact.RedactJSON([]byte(`not json secret`))); strings.Contains(got, "secret") {
		t.Fatalf("RedactJSON of non-JSON = %s", got)
	}
	for in, want := range map[string]string{
		"dial postgres://app:hunter2@db/x":            "dial postgres://[REDACTED]@db/x",
		"header Authorization: Bearer abc.def":        "header Authorization: Bearer [REDACTED]",
		"GET /cb?code=abc&state=def":                  "GET /cb?code=[REDACTED]&state=[REDACTED]",
		"token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl ok": "token [REDACTED] ok",
	} {
		if got := redact.Text(in); got != want {
			t.Errorf("redact.Text(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactingHandler: the host's log handler withholds a sensitive key's
// value wherever it sits in a record (the only attribute, after plain ones,
// in a group, inside a map), scrubs credentials from errors' text, and passes
// plain records through unchanged.
func TestRedactingHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(redact.NewHandler(slog.NewJSONHandler(&buf, nil)))
	log.Info("one", slog.String("token", "CANARYalone0001"))
	log.Info("many", slog.String("route", "/r"), slog.Int("status", 200), slog.String("a", "b"), slog.String("c", "d"),
		slog.String("e", "f"), slog.String("g", "h"), slog.String("client_secret", "CANARYlast0002"))
	log.Info("group", slog.Group("req", slog.String("path", "/p"), slog.String("password", "CANARYgroup0003")))
	log.Info("any", slog.Any("body", map[string]any{"refresh_token": "CANARYmap0004", "n": 1}))
	log.Info("err", "error", fmt.Errorf("connect: %w", errors.New("dial postgres://app:CANARYerr0005@db/x")))
	log.With("error", errors.New("Authorization: Bearer CANARYwith0006")).Info("with")
	log.Info("plain", slog.String("route", "/api/v1/allocations"), slog.Int("status", 200))
	out := buf.String()
	if strings.Contains(out, "CANARY") {
		t.Fatalf("a secret reached the log:\n%s", out)
	}
	for _, want := range []string{`"token":"[REDACTED]"`, `"client_secret":"[REDACTED]"`, `"status":200`,
		`"req":{"path":"/p","password":"[REDACTED]"}`, `"n":1`, `"error":"connect: dial postgres://[REDACTED]@db/x"`, `"msg":"plain","route":"/api/v1/allocations","status":200}`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
