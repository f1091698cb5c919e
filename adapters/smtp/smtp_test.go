package smtp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/smtp"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/poll"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func startMailpit(t *testing.T, dir string, smtpPort int) *smtp.Mailpit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := smtp.StartMailpit(ctx, smtp.MailpitConfig{Dir: dir, SMTPPort: smtpPort})
	if errors.Is(err, smtp.ErrMailpitNotFound) {
		services.Unavailable(t, "mailpit", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })
	return m
}

func TestSendThroughMailpitAndRetryAfterAnOutage(t *testing.T) {
	dir := t.TempDir()
	mp := startMailpit(t, dir, 0)
	mailer, err := smtp.New(smtp.Config{Host: mp.SMTPHost(), Port: mp.SMTPPort(), From: "GPUaaS <noreply@gpuaas.test>",
		TLS: smtp.TLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := mailer.Send(ctx, ports.Mail{To: "alice@example.com", Subject: "Your balance is low", Body: "Top up.",
		MessageID: "<evt-1.user-1@gpuaas.test>"}); err != nil {
		t.Fatal(err)
	}
	if err := mailer.Check(ctx); err != nil {
		t.Fatalf("health check: %v", err)
	}
	msgs, err := mp.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].MessageID != "evt-1.user-1@gpuaas.test" || msgs[0].Subject != "Your balance is low" ||
		len(msgs[0].To) != 1 || msgs[0].To[0].Address != "alice@example.com" {
		t.Fatalf("captured %+v", msgs)
	}
	// The sink goes away: sending fails (the caller retries) …
	port := mp.SMTPPort()
	mp.Stop(ctx)
	if err := mailer.Send(ctx, ports.Mail{To: "alice@example.com", Subject: "s", Body: "b", MessageID: "<evt-2@x>"}); err == nil {
		t.Fatal("a send with the server down succeeded")
	}
	// … and works again once it is back (same port, same mailbox).
	mp = startMailpit(t, dir, port)
	if err := mailer.Send(ctx, ports.Mail{To: "alice@example.com", Subject: "s", Body: "b", MessageID: "<evt-2@x>"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "two messages in mailpit", func() bool {
		msgs, err := mp.Messages(ctx)
		return err == nil && len(msgs) == 2
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []smtp.Config{{}, {Host: "h"}, {Host: "h", From: "x"}, {Host: "h", From: "a@b", TLS: "ssl3"},
		{Host: "h", From: "a@b", Port: 70000}} {
		if _, err := smtp.New(c); err == nil {
			t.Errorf("%v accepted", c)
		}
	}
	c := smtp.Config{Host: "h", From: "a@b", Username: "u", Password: "canary-secret-pw"}
	if _, err := smtp.New(c); err != nil {
		t.Fatal(err)
	}
	if s := c.String(); s == "" || strings.Contains(s, "canary-secret-pw") {
		t.Fatalf("String shows the password: %s", s)
	}
}
