package notification_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/notification"
)

// The Standard Webhooks specification's published example.
func TestSignMatchesTheSpecExample(t *testing.T) {
	t.Parallel()
	sig, err := notification.Sign([]notification.Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		"msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; sig != want {
		t.Fatalf("signature %q; want %q", sig, want)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://hooks.example.com/gpuaas", false, true},
		{"https://93.184.216.34:8443/x", false, true},
		{"http://hooks.example.com/x", false, false},
		{"http://127.0.0.1:8099/x", true, true},
		{"https://127.0.0.1/x", false, false},
		{"https://10.0.0.1/x", false, false},
		{"https://192.168.1.1/x", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://100.64.0.1/x", false, false},
		{"https://[::1]/x", false, false},
		{"https://[fd00::1]/x", false, false},
		{"https://[::ffff:127.0.0.1]/x", false, false},
		{"https://0.0.0.0/x", false, false},
		{"https://localhost/x", false, false},
		{"https://api.localhost/x", false, false},
		{"https://a:b@hooks.example.com/x", false, false},
		{"hooks.example.com/x", false, false},
		{"https://hooks.example.com/x#frag", false, false},
		{"https://" + strings.Repeat("a", 2100) + ".com", false, false},
	} {
		err := notification.CheckURL(c.url, c.allowPrivate)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%.60q, %v) = %v; want ok=%v", c.url, c.allowPrivate, err, c.ok)
		}
		if err != nil && fault.From(err).Code != notification.CodeWebhookURLRefused {
			t.Errorf("%q: code %s", c.url, fault.From(err).Code)
		}
	}
}

func TestFromEvent(t *testing.T) {
	t.Parallel()
	env := func(typ string, p map[string]any) event.Envelope {
		b, _ := json.Marshal(p)
		return event.Envelope{ID: "e1", Type: typ, TenantID: "t1", Payload: b}
	}
	m, ok, err := notification.FromEvent(env(event.AutoReleasePending, map[string]any{"balance_minor": 250, "currency": "usd",
		"burn_rate_minor_per_hour": 1000, "runway_seconds": 900}))
	if err != nil || !ok || m.Audience != notification.ToTenant || !strings.Contains(m.Body, "about 15 minutes") {
		t.Fatalf("auto-release pending: %+v %v %v", m, ok, err)
	}
	m, ok, err = notification.FromEvent(env(event.AllocationActive, map[string]any{"allocation_id": "0193-abcdef12", "user_id": "u1", "sku_id": "h100"}))
	if err != nil || !ok || m.Audience != notification.ToUser || m.UserID != "u1" || m.Data["allocation_id"] != "0193-abcdef12" ||
		m.Body != "Allocation abcdef12 (h100) is active: connect with gpuaas ssh abcdef12, the SSH command on its page, or its browser terminal." {
		t.Fatalf("allocation active (the body says how to connect, by the short name): %+v %v %v", m, ok, err)
	}
	// A released node's notice says what it cost (the event's usage).
	m, _, err = notification.FromEvent(env(event.AllocationReleased, map[string]any{"allocation_id": "0193-abcdef12", "user_id": "u1",
		"sku_id": "h100", "usage": map[string]any{"billed_seconds": 7980, "cost_minor": 4123, "currency": "usd"}}))
	if err != nil || m.Body != "Allocation abcdef12 (h100) was released after 2 h 13 min of use, billed 41.23 USD." ||
		m.Data["cost_minor"] != int64(4123) || m.Data["billed_seconds"] != int64(7980) {
		t.Fatalf("allocation released: %+v %v", m, err)
	}
	m, _, _ = notification.FromEvent(env(event.AllocationReleased, map[string]any{"allocation_id": "a1", "user_id": "u1", "sku_id": "h100",
		"forced": true, "usage": map[string]any{"billed_seconds": 0, "cost_minor": 0, "currency": "usd"}}))
	if !strings.Contains(m.Body, "by the platform") || !strings.HasSuffix(m.Body, "; nothing was billed for it.") {
		t.Fatalf("forced release before it was active (an event without its reason): %q", m.Body)
	}
	// Who or what asked for the release.
	for reason, want := range map[string]string{
		"user":             "Allocation a1 (h100) was released after 1 min of use, billed 0.05 USD.",
		"tenant_admin":     "Allocation a1 (h100) was released by an admin of your organisation after 1 min",
		"operator":         "Allocation a1 (h100) was released by a platform operator after",
		"balance_depleted": "Allocation a1 (h100) was released because your balance ran out after",
		"cost_cap_reached": "Allocation a1 (h100) was released because it reached its total-cost cap after",
	} {
		m, _, err = notification.FromEvent(env(event.AllocationReleased, map[string]any{"allocation_id": "a1", "user_id": "u1",
			"sku_id": "h100", "forced": reason != "user" && reason != "tenant_admin", "release_reason": reason,
			"usage": map[string]any{"billed_seconds": 60, "cost_minor": 5, "currency": "usd"}}))
		if err != nil || !strings.HasPrefix(m.Body, want) || m.Data["release_reason"] != reason {
			t.Errorf("released (%s): %q %v; want it to begin %q", reason, m.Body, m.Data, want)
		}
	}
	m, _, _ = notification.FromEvent(env(event.AllocationReleased, map[string]any{"allocation_id": "a1", "user_id": "u1", "sku_id": "h100"}))
	if m.Body != "Allocation a1 (h100) was released." || m.Data["cost_minor"] != nil {
		t.Fatalf("an event from before usage was carried: %+v", m)
	}
	for secs, want := range map[int64]string{0: "0 s", 45: "45 s", 60: "1 min", 725: "12 min 5 s", 7980: "2 h 13 min",
		7200: "2 h", 273600: "3 d 4 h", 86401: "1 d"} {
		if got := notification.Duration(secs); got != want {
			t.Errorf("Duration(%d) = %q; want %q", secs, got, want)
		}
	}
	if _, ok, err := notification.FromEvent(env(event.UsageDebited, map[string]any{})); ok || err != nil {
		t.Fatalf("usage_debited raised a notification: %v %v", ok, err)
	}
	if _, _, err := notification.FromEvent(env(event.AllocationActive, map[string]any{})); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("an allocation event without a user: %v", err)
	}
	if _, _, err := notification.FromEvent(event.Envelope{Type: event.LowBalanceWarning, Payload: []byte(`{`)}); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("malformed payload: %v", err)
	}
	for _, k := range notification.Kinds() {
		if k.Flag().Name != "notification."+string(k)+".enabled" {
			t.Errorf("kind %s has flag %q", k, k.Flag().Name)
		}
	}
	if notification.Money(-1234, "usd") != "-12.34 USD" {
		t.Error(notification.Money(-1234, "usd"))
	}
}

func TestLinkLeadsWhereTheConsoleDoes(t *testing.T) {
	for _, c := range []struct {
		n           notification.Notification
		path, label string
	}{
		{notification.Notification{Kind: notification.AllocationActive, Data: map[string]any{"allocation_id": "01a2-b3"}}, "/allocations/01a2-b3", "Open the allocation"},
		{notification.Notification{Kind: notification.AutoReleasePending, Data: map[string]any{"allocation_id": "a/../x"}}, "/allocations/a%2F..%2Fx", "Open the allocation"},
		{notification.Notification{Kind: notification.LowBalance}, "/billing", "Open billing"},
		{notification.Notification{Kind: notification.PaymentCredited, Data: map[string]any{"allocation_id": ""}}, "/billing", "Open billing"},
		{notification.Notification{Kind: notification.WebhookEndpointDisabled, Data: map[string]any{"endpoint_id": "01e/x", "project_id": "p 1"}},
			"/settings/webhooks/01e%2Fx?project=p+1", "Open the endpoint"},
		// Rows written before the project was kept: the active project's list.
		{notification.Notification{Kind: notification.WebhookEndpointDisabled, Data: map[string]any{"endpoint_id": "01e"}}, "/settings/webhooks", "Open webhooks"},
		{notification.Notification{Kind: notification.AllocationFailed}, "", ""},
	} {
		if path, label := c.n.Link(); path != c.path || label != c.label {
			t.Errorf("%s %v: Link() = %q, %q; want %q, %q", c.n.Kind, c.n.Data, path, label, c.path, c.label)
		}
	}
}
