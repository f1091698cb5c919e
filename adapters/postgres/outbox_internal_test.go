package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSanitizeError(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxErrorLen) // 2 bytes a rune: the cut lands mid-rune
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "nats: timeout", "nats: timeout"},
		{"url password", "dial nats://u:s3cret@host:4222 failed", "dial nats://***@host:4222 failed"},
		{"postgres url", "postgres://app:pw@db/x?sslmode=disable", "postgres://***@db/x?sslmode=disable"},
		{"token only", "tls://tok3n@h:1", "tls://***@h:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := sanitizeError(errors.New(tc.in)); got != tc.want {
				t.Fatalf("sanitizeError(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
	got := sanitizeError(errors.New(long))
	if len(got) > maxErrorLen || !utf8.ValidString(got) || len(got) < maxErrorLen-1 {
		t.Fatalf("long error cut to %d bytes (valid utf8 %v)", len(got), utf8.ValidString(got))
	}
}

func TestOutboxBackoff(t *testing.T) {
	t.Parallel()
	o := &Outbox{cfg: OutboxConfig{BaseBackoff: time.Second, MaxBackoff: 5 * time.Minute}}
	for _, tc := range []struct {
		attempt int
		ceil    time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{5, 16 * time.Second},
		{9, 256 * time.Second},
		{10, 5 * time.Minute},
		{100, 5 * time.Minute}, // no overflow
	} {
		for range 50 {
			d := o.backoff(tc.attempt)
			if d < tc.ceil/2 || d > tc.ceil {
				t.Fatalf("backoff(%d) = %v; want in [%v, %v]", tc.attempt, d, tc.ceil/2, tc.ceil)
			}
		}
	}
}

func TestOutboxConfigDefaults(t *testing.T) {
	t.Parallel()
	var c OutboxConfig
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.MaxRetries != MaxRetries || c.BaseBackoff != time.Second || c.MaxBackoff != 5*time.Minute || c.Logger == nil {
		t.Fatalf("defaults = %+v", c)
	}
	for _, bad := range []OutboxConfig{
		{BaseBackoff: -1},
		{BaseBackoff: time.Minute, MaxBackoff: time.Second},
		{MaxRetries: -1},
	} {
		if err := bad.CheckAndSetDefaults(); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}
